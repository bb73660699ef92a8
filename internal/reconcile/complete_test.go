package reconcile

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"benchling-webhook/internal/exitcode"
	"benchling-webhook/internal/quiltpkg"
	"benchling-webhook/internal/store"
	"benchling-webhook/internal/testkit/sandbox"
)

// pkgKey is the key of name in entity's package.
func pkgKey(entity, name string) string { return testPrefix + "/" + entity + "/" + name }

// TestComplete: a package is current only if its record is complete,
// records the entry's version, and every recorded file is there with its
// ETag; anything else is repaired (started), with the reason and a
// detail, except an export still running.
func TestComplete(t *testing.T) {
	f := newFixture(t, sandbox.Options{})
	at := ago(time.Hour)
	ids := []string{"etr_done", "etr_dropzone", "etr_gutted", "etr_changed", "etr_resized", "etr_repaired", "etr_norecord", "etr_none",
		"etr_older", "etr_recnewer", "etr_recolder", "etr_dead", "etr_running", "etr_killed", "etr_young", "etr_unknownrun",
		"etr_undated", "etr_badrec", "etr_otherrec", "etr_outside", "etr_nofiles"}
	entries := map[string]time.Time{}
	for _, id := range ids {
		entries[id] = at
	}
	f.addEntries(entries)
	s := f.store

	s.putPackage("etr_done", at)
	s.putPackage("etr_dropzone", at)
	s.put(pkgKey("etr_dropzone", "notes/added-by-hand.txt"), []byte("from the catalog's drop zone"))
	s.putPackage("etr_gutted", at) // a failed rerun's rollback deleted what it touched
	s.delete(pkgKey("etr_gutted", "data/plate.csv"))
	s.delete(pkgKey("etr_gutted", "input.json"))
	s.putPackage("etr_changed", at)
	s.put(pkgKey("etr_changed", "data/plate.csv"), []byte("a,b\n3,4\n")) // same size, other bytes: only the ETag differs
	s.putPackage("etr_resized", at)
	s.put(pkgKey("etr_resized", "README.md"), []byte("# longer than it was\n"))
	// The version's execution SUCCEEDED, and yet the package lost a file
	// since: repaired as NAME-r1, not "already started".
	s.putPackage("etr_repaired", at)
	s.delete(pkgKey("etr_repaired", "README.md"))
	f.sfn.Add(testMachine, ExecutionName("etr_repaired", at, ""), "SUCCEEDED")
	s.putEntryJSON("etr_norecord", at) // packaged before records were kept
	s.putReadme("etr_norecord")
	s.putPackage("etr_older", at.Add(-time.Minute))

	// The record's EntryModifiedAt, when set, is the version: entry.json
	// is not read.
	rec := s.putPackage("etr_recnewer", at)
	rec.EntryModifiedAt = at
	s.putRecord(rec)
	s.putEntryJSON("etr_recnewer", at.Add(-time.Minute)) // would be older; and now its ETag differs too…
	rec.Files[1].ETag, rec.Files[1].Size = etagOf(s, pkgKey("etr_recnewer", "entry.json"))
	s.putRecord(rec) // … so the record follows it
	rec = s.putPackage("etr_recolder", at)
	rec.EntryModifiedAt = at.Add(-time.Minute)
	s.putRecord(rec)

	inProgress := func(id string, startedAt time.Time, run string) {
		pkg := testPrefix + "/" + id
		prev := s.putPackage(id, at)
		s.putRecord(quiltpkg.Record{Package: pkg, State: quiltpkg.RecordInProgress, Run: run, StartedAt: startedAt,
			Planned: []string{pkg + "/data/plate.csv", pkg + "/README.md"}, Previous: prev.Files})
	}
	inProgress("etr_dead", now.Add(-5*time.Hour), "")                                   // SIGKILLed long ago, by hand
	inProgress("etr_running", now.Add(-5*time.Hour), "etr_running-20250307T100000Z-r1") // RUNNING, however old
	f.sfn.Add(testMachine, "etr_running-20250307T100000Z-r1", "RUNNING")
	inProgress("etr_killed", now.Add(-10*time.Minute), "etr_killed-20250307T100000Z") // its execution FAILED: dead however young
	f.sfn.Add(testMachine, "etr_killed-20250307T100000Z", "FAILED")
	inProgress("etr_young", now.Add(-10*time.Minute), "job export 2025-03-07T11:50:00Z") // by hand, minutes ago
	inProgress("etr_unknownrun", now.Add(-10*time.Minute), "etr_unknownrun-nosuchexecution")
	inProgress("etr_undated", time.Time{}, "")
	s.put(quiltpkg.ControlKey(testPrefix+"/etr_badrec", quiltpkg.RecordName), []byte("{not json"))
	s.putEntryJSON("etr_badrec", at)
	rec = s.putPackage("etr_otherrec", at)
	rec.Package = testPrefix + "/etr_done"
	s.put(quiltpkg.ControlKey(testPrefix+"/etr_otherrec", quiltpkg.RecordName), mustEncode(t, rec))
	rec = s.putPackage("etr_outside", at)
	rec.Files = append(rec.Files, quiltpkg.RecordFile{Key: testPrefix + "/etr_done/README.md"})
	s.putRecord(rec)
	rec = s.putPackage("etr_nofiles", at)
	rec.Files = nil
	s.putRecord(rec)

	var r recorder
	cfg := f.config(t, now)
	cfg.Report = r.report
	cfg.MaxStart = 100
	sum, err := Run(t.Context(), cfg)
	require.NoError(t, err)
	got := map[string]Action{}
	for _, a := range r.actions {
		got[a.Entity] = a
	}
	want := map[string][3]string{ // reason, outcome, a part of the detail
		"etr_gutted":     {ReasonIncomplete, OutcomeStarted, "missing 2 files (benchling/etr_gutted/data/plate.csv, benchling/etr_gutted/input.json) of the 4 recorded"},
		"etr_changed":    {ReasonIncomplete, OutcomeStarted, "1 file changed (benchling/etr_changed/data/plate.csv)"},
		"etr_resized":    {ReasonIncomplete, OutcomeStarted, "1 file changed (benchling/etr_resized/README.md)"},
		"etr_repaired":   {ReasonIncomplete, OutcomeRestarted, "missing 1 file (benchling/etr_repaired/README.md)"},
		"etr_norecord":   {ReasonIncomplete, OutcomeStarted, "no record"},
		"etr_none":       {ReasonMissing, OutcomeStarted, "no benchling/etr_none/entry.json"},
		"etr_older":      {ReasonOlder, OutcomeStarted, "packaged as modified at"},
		"etr_recolder":   {ReasonOlder, OutcomeStarted, "packaged as modified at"},
		"etr_dead":       {ReasonIncomplete, OutcomeStarted, "export in progress since 2025-03-07T07:00:00Z, more than 4h0m0s ago: the export died"},
		"etr_running":    {ReasonIncomplete, OutcomeBeingPackaged, "RUNNING"},
		"etr_killed":     {ReasonIncomplete, OutcomeStarted, "the execution ended FAILED"},
		"etr_young":      {ReasonIncomplete, OutcomeBeingPackaged, "less than 4h0m0s ago"},
		"etr_unknownrun": {ReasonIncomplete, OutcomeBeingPackaged, "less than 4h0m0s ago"},
		"etr_undated":    {ReasonIncomplete, OutcomeStarted, "since an unknown time"},
		"etr_badrec":     {ReasonCorrupt, OutcomeStarted, "invalid package record"},
		"etr_otherrec":   {ReasonCorrupt, OutcomeStarted, `the record of package "benchling/etr_done"`},
		"etr_outside":    {ReasonCorrupt, OutcomeStarted, "outside the package"},
		"etr_nofiles":    {ReasonCorrupt, OutcomeStarted, "lists no files"},
	}
	for id, w := range want {
		a, ok := got[id]
		require.True(t, ok, "%s: no action", id)
		require.Equal(t, w[0], a.Reason, id)
		require.Equal(t, w[1], a.Outcome, id)
		require.Contains(t, a.Detail, w[2], id)
	}
	require.Len(t, got, len(want), "etr_done, etr_dropzone and etr_recnewer are current")
	require.Equal(t, 3, sum.UpToDate)
	require.Equal(t, len(want), sum.Stale)
	require.Equal(t, 3, sum.AlreadyStarted, "being packaged")
	require.Equal(t, len(want)-4, sum.Started)
	require.Equal(t, 1, sum.Restarted)
	require.Equal(t, ExecutionName("etr_repaired", at, "r1"), got["etr_repaired"].Execution)
	require.Equal(t, "SUCCEEDED", got["etr_repaired"].PreviousStatus)
	require.Equal(t, "arn:aws:states:us-east-1:123456789012:execution:app-env-worker-packaging:etr_running-20250307T100000Z-r1", got["etr_running"].Execution)
	require.Equal(t, "job export 2025-03-07T11:50:00Z", got["etr_young"].Execution)
	require.NotContains(t, f.started(), "etr_running")
	require.Contains(t, f.logs.String(), "being packaged: not started again")
	// One listing per complete record of the current version, and none
	// for the others.
	require.Equal(t, 8, s.lists)
}

// etagOf returns the ETag and size the fake lists for key.
func etagOf(s *memStore, key string) (string, int64) {
	b, _ := s.get(key)
	return etag(b), int64(len(b))
}

func mustEncode(t *testing.T, rec quiltpkg.Record) []byte {
	t.Helper()
	b, err := rec.Encode()
	require.NoError(t, err)
	return b
}

// TestCompleteDryRun: a dry run has no Step Functions client, so a record
// in progress is judged by its age alone.
func TestCompleteDryRun(t *testing.T) {
	f := newFixture(t, sandbox.Options{})
	at := ago(time.Hour)
	f.addEntries(map[string]time.Time{"etr_young": at, "etr_old": at})
	for id, started := range map[string]time.Time{"etr_young": now.Add(-time.Hour), "etr_old": now.Add(-5 * time.Hour)} {
		f.store.putRecord(quiltpkg.Record{Package: testPrefix + "/" + id, State: quiltpkg.RecordInProgress, Run: id + "-20250307T100000Z", StartedAt: started})
	}
	var r recorder
	cfg := f.config(t, now)
	cfg.Report, cfg.DryRun, cfg.Packager.Client = r.report, true, nil
	cfg.InProgressTimeout = 2 * time.Hour
	sum, err := Run(t.Context(), cfg)
	require.NoError(t, err)
	require.Equal(t, map[string]string{"etr_young": OutcomeBeingPackaged, "etr_old": OutcomeWouldStart}, r.outcomes())
	require.Equal(t, 1, sum.WouldStart)
	require.Zero(t, f.sfn.Calls("DescribeExecution"))
}

// TestCompleteErrors: a record or a listing that cannot be read, or an
// execution that cannot be described, is the entry's failure (exit 4 when
// transient), and names what failed.
func TestCompleteErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		failing string
		want    string
	}{
		"record":  {quiltpkg.ControlKey(testPrefix+"/etr_a", quiltpkg.RecordName), "read benchling/.packaging/etr_a/record.json"},
		"listing": {testPrefix + "/etr_a/", "list benchling/etr_a/"},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, sandbox.Options{})
			f.addEntries(map[string]time.Time{"etr_a": ago(time.Hour)})
			f.store.putPackage("etr_a", ago(time.Hour))
			f.store.getErr = func(key string) error {
				if key == tc.failing {
					return exitcode.Wrap(errors.New("connection reset"), exitcode.Transient)
				}
				return nil
			}
			sum, err := Run(t.Context(), f.config(t, now))
			require.Equal(t, exitcode.Transient, exitcode.Resolve(err))
			require.Equal(t, 1, sum.Failed)
			require.ErrorContains(t, err, tc.want)
			require.False(t, sum.StateRecorded)
		})
	}
}

// TestInvalidListedID: an id Benchling lists that is not an entry id is
// skipped before any S3 read; the others are packaged, the state is
// recorded, and the run ends with exit 3 naming the id.
func TestInvalidListedID(t *testing.T) {
	f := newFixture(t, sandbox.Options{})
	f.addEntries(map[string]time.Time{"etr_x/../etr_victim": ago(time.Hour), "etr_ok": ago(time.Hour)})
	var read []string
	f.store.getErr = func(key string) error {
		read = append(read, key)
		return nil
	}
	cfg := f.config(t, now)
	cfg.Concurrency = 1
	sum, err := Run(t.Context(), cfg)
	require.Equal(t, exitcode.BadInput, exitcode.Resolve(err), "%v", err)
	require.ErrorContains(t, err, `"etr_x/../etr_victim"`)
	require.Equal(t, 1, sum.InvalidIDs)
	require.Equal(t, []string{"etr_ok"}, f.started())
	require.True(t, sum.StateRecorded)
	for _, k := range read {
		require.NotContains(t, k, "victim")
	}
	require.Contains(t, f.logs.String(), "not an entry id")
}

// TestAbortUploads: multipart uploads below the prefix older than
// AbortUploadsAfter are aborted, younger ones and those outside the
// prefix are not; a dry run only counts them.
func TestAbortUploads(t *testing.T) {
	f := newFixture(t, sandbox.Options{})
	s := f.store
	s.uploads = []store.Upload{
		{Key: "benchling/etr_a/data/big.bin", UploadID: "old-a", Initiated: now.Add(-25 * time.Hour)},
		{Key: "benchling/.packaging/etr_a/entry.json", UploadID: "old-control", Initiated: now.Add(-48 * time.Hour)},
		{Key: "benchling/etr_b/data/big.bin", UploadID: "young", Initiated: now.Add(-23 * time.Hour)},
		{Key: "benchling2/etr_a/data/big.bin", UploadID: "other-prefix", Initiated: now.Add(-72 * time.Hour)},
		{Key: "elsewhere/benchling/etr_a/big.bin", UploadID: "elsewhere", Initiated: now.Add(-72 * time.Hour)},
	}
	ids := func() []string {
		var out []string
		for _, u := range s.uploads {
			out = append(out, u.UploadID)
		}
		return out
	}

	cfg := f.config(t, now)
	cfg.DryRun = true
	sum, err := Run(t.Context(), cfg)
	require.NoError(t, err)
	require.Equal(t, 2, sum.OldUploads)
	require.Zero(t, sum.UploadsAborted)
	require.Len(t, s.uploads, 5, "a dry run aborts nothing")
	require.Contains(t, f.logs.String(), "would abort an old multipart upload")

	cfg = f.config(t, now)
	cfg.AbortUploadsAfter = -1
	sum, err = Run(t.Context(), cfg)
	require.NoError(t, err)
	require.Zero(t, sum.OldUploads)
	require.Len(t, s.uploads, 5, "turned off")

	cfg = f.config(t, now)
	sum, err = Run(t.Context(), cfg)
	require.NoError(t, err)
	require.Equal(t, 2, sum.OldUploads)
	require.Equal(t, 2, sum.UploadsAborted)
	require.ElementsMatch(t, []string{"old-a", "old-control"}, s.aborted)
	require.ElementsMatch(t, []string{"young", "other-prefix", "elsewhere"}, ids())
	require.True(t, sum.StateRecorded)

	// A failure to abort fails the run with its code, and leaves the
	// state for the next run.
	s.uploads = append(s.uploads, store.Upload{Key: "benchling/etr_c/big.bin", UploadID: "stuck", Initiated: now.Add(-30 * time.Hour)})
	s.getErr = func(key string) error {
		if strings.HasPrefix(key, "abort:") {
			return exitcode.Wrap(errors.New("AccessDenied"), exitcode.Usage)
		}
		return nil
	}
	cfg = f.config(t, now.Add(time.Hour))
	sum, err = Run(t.Context(), cfg)
	require.Equal(t, exitcode.Usage, exitcode.Resolve(err))
	require.ErrorContains(t, err, "abort an old multipart upload")
	require.False(t, sum.StateRecorded)
}
