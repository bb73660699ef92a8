package reconcile

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"benchling-webhook/internal/benchling"
	"benchling-webhook/internal/quiltpkg"
	"benchling-webhook/internal/sfn"
	"benchling-webhook/internal/store"
)

// maxRecordBytes caps the record read: about 200 bytes a file, so more
// than 100,000 files.
const maxRecordBytes = 32 << 20

// verdict is what [run.check] found for one entry.
type verdict struct {
	// reason is why the package is stale (Reason*), "" when it is current.
	reason string
	// detail says it for people: "missing 3 files (…)".
	detail string
	// running, when set, is the execution (an ARN, or the record's run)
	// still writing the package: it is stale, and not started again.
	running string
}

func stale(reason, format string, args ...any) verdict {
	return verdict{reason: reason, detail: fmt.Sprintf(format, args...)}
}

// check says whether e's package is complete and current
// (docs/operations.md, "Reconcile"): its record (the export's) is
// complete, it packaged e as Benchling modified it last, and every file it
// lists is in place with the ETag it recorded, as one listing of the
// package shows them. Files that no export wrote (a drop zone's) do not
// count. A record in progress is an export under way, or a dead one: see
// [run.checkInProgress]. A package without a record (made before records
// were kept) is checked by its entry.json, and is stale once, so that it
// gets one.
func (r *run) check(ctx context.Context, e benchling.Entry) (verdict, error) {
	pkg := quiltpkg.Name(r.cfg.Prefix, e.ID)
	key := quiltpkg.ControlKey(pkg, quiltpkg.RecordName)
	data, err := r.cfg.Store.Get(ctx, key, maxRecordBytes)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return r.checkUnrecorded(ctx, e, pkg)
	case errors.Is(err, store.ErrTooLarge):
		return stale(ReasonCorrupt, "%s is larger than %d bytes", key, maxRecordBytes), nil
	case err != nil:
		return verdict{}, fmt.Errorf("reconcile: read %s: %w", key, err)
	}
	rec, err := quiltpkg.DecodeRecord(data)
	switch {
	case err != nil:
		return stale(ReasonCorrupt, "%s: %v", key, err), nil
	case rec.Package != pkg:
		return stale(ReasonCorrupt, "%s is the record of package %q", key, rec.Package), nil
	case rec.State == quiltpkg.RecordInProgress:
		return r.checkInProgress(ctx, rec)
	}
	at := rec.EntryModifiedAt
	if at.IsZero() { // a record without it: entry.json says
		v, entryAt, err := r.packagedAt(ctx, e, pkg)
		if err != nil || v.reason != "" {
			return v, err
		}
		at = entryAt
	}
	if at.Before(e.ModifiedAt) {
		return stale(ReasonOlder, "packaged as modified at %s", at.UTC().Format(time.RFC3339Nano)), nil
	}
	return r.checkFiles(ctx, pkg, rec)
}

// checkUnrecorded checks a package without a record by its entry.json: it
// is missing, corrupt or older as before; else incomplete, since nothing
// says which files it should hold.
func (r *run) checkUnrecorded(ctx context.Context, e benchling.Entry, pkg string) (verdict, error) {
	v, at, err := r.packagedAt(ctx, e, pkg)
	switch {
	case err != nil || v.reason != "":
		return v, err
	case at.Before(e.ModifiedAt):
		return stale(ReasonOlder, "packaged as modified at %s", at.UTC().Format(time.RFC3339Nano)), nil
	}
	return stale(ReasonIncomplete, "no record of what the export wrote (%s): packaged before records were kept, or the export did not finish",
		quiltpkg.ControlKey(pkg, quiltpkg.RecordName)), nil
}

// packagedAt reads the modifiedAt of the entry version the package holds,
// from its entry.json; a verdict with a reason when there is none to read.
func (r *run) packagedAt(ctx context.Context, e benchling.Entry, pkg string) (verdict, time.Time, error) {
	key := quiltpkg.Key(pkg, quiltpkg.EntryName)
	data, err := r.cfg.Store.Get(ctx, key, quiltpkg.MaxEntryBytes)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return stale(ReasonMissing, "no %s", key), time.Time{}, nil
	case errors.Is(err, store.ErrTooLarge):
		return stale(ReasonCorrupt, "%s is too large", key), time.Time{}, nil
	case err != nil:
		return verdict{}, time.Time{}, fmt.Errorf("reconcile: read %s: %w", key, err)
	}
	packaged, err := benchling.DecodeEntry(data)
	switch {
	case err != nil || packaged.ID != e.ID:
		return stale(ReasonCorrupt, "%s is not this entry's", key), time.Time{}, nil
	case packaged.ModifiedAt.IsZero():
		return stale(ReasonCorrupt, "%s has no valid modifiedAt", key), time.Time{}, nil
	}
	return verdict{}, packaged.ModifiedAt, nil
}

// maxNamed is how many keys a detail names.
const maxNamed = 3

// checkFiles lists the package once and compares each file of the
// complete record rec with what is there.
func (r *run) checkFiles(ctx context.Context, pkg string, rec quiltpkg.Record) (verdict, error) {
	if len(rec.Files) == 0 {
		return stale(ReasonCorrupt, "the complete record of %s lists no files", pkg), nil
	}
	objs, err := r.cfg.Store.List(ctx, pkg+"/")
	if err != nil {
		return verdict{}, fmt.Errorf("reconcile: list %s/: %w", pkg, err)
	}
	there := make(map[string]store.ObjectInfo, len(objs))
	for _, o := range objs {
		there[o.Key] = o
	}
	var missing, changed []string
	for _, f := range rec.Files {
		if !strings.HasPrefix(f.Key, pkg+"/") {
			return stale(ReasonCorrupt, "the record of %s lists %s, outside the package", pkg, f.Key), nil
		}
		o, ok := there[f.Key]
		switch {
		case !ok:
			missing = append(missing, f.Key)
		case o.Size != f.Size || f.ETag != "" && unquote(o.ETag) != unquote(f.ETag):
			changed = append(changed, f.Key)
		}
	}
	var parts []string
	if len(missing) > 0 {
		parts = append(parts, fmt.Sprintf("missing %s (%s)", files(len(missing)), named(missing)))
	}
	if len(changed) > 0 {
		parts = append(parts, fmt.Sprintf("%s changed (%s)", files(len(changed)), named(changed)))
	}
	if len(parts) == 0 {
		return verdict{}, nil
	}
	return stale(ReasonIncomplete, "%s of the %d recorded", strings.Join(parts, ", "), len(rec.Files)), nil
}

func files(n int) string {
	if n == 1 {
		return "1 file"
	}
	return fmt.Sprintf("%d files", n)
}

func named(keys []string) string {
	if len(keys) > maxNamed {
		return strings.Join(keys[:maxNamed], ", ") + ", …"
	}
	return strings.Join(keys, ", ")
}

// unquote strips the quotes S3 puts around an ETag, so that one recorded
// with or without them compares equal.
func unquote(etag string) string { return strings.Trim(etag, `"`) }

// checkInProgress decides about a record in progress: an export is
// writing the package, or one died (SIGKILL, a stopped task, an S3
// outage) and left it half-written. The export is taken to be alive, and
// the entry is skipped (OutcomeBeingPackaged), when the record's run is
// an execution that Step Functions reports RUNNING; when it is not an
// execution (a "job export" by hand) or Step Functions does not know it,
// as long as the record is younger than InProgressTimeout (default the
// packaging machine's timeout: no execution of it runs longer). Otherwise
// the package is incomplete and repaired.
func (r *run) checkInProgress(ctx context.Context, rec quiltpkg.Record) (verdict, error) {
	since := "an unknown time"
	if !rec.StartedAt.IsZero() {
		since = rec.StartedAt.UTC().Format(time.RFC3339)
	}
	detail := fmt.Sprintf("export in progress since %s", since)
	if rec.Run != "" {
		detail += fmt.Sprintf(" (run %q)", rec.Run)
	}
	young := !rec.StartedAt.IsZero() && r.cfg.Now().Sub(rec.StartedAt) < r.cfg.InProgressTimeout
	if arn := r.runARN(rec.Run); arn != "" {
		cctx, cancel := r.cfg.Packager.callContext(ctx)
		ex, err := sfn.New(r.cfg.Packager.Client).Describe(cctx, arn)
		cancel()
		var unknown *sfntypes.ExecutionDoesNotExist
		switch {
		case errors.As(err, &unknown): // another machine's, or aged out: the age decides
		case err != nil:
			return verdict{}, fmt.Errorf("reconcile: is the export of %s still running: %w", rec.Package, err)
		case ex.Running():
			return verdict{reason: ReasonIncomplete, detail: detail + ": " + string(ex.Status), running: arn}, nil
		default:
			return stale(ReasonIncomplete, "%s: the execution ended %s without completing it", detail, ex.Status), nil
		}
	}
	if young {
		running := rec.Run
		if running == "" {
			running = "unknown"
		}
		return verdict{reason: ReasonIncomplete, detail: fmt.Sprintf("%s, less than %s ago", detail, r.cfg.InProgressTimeout), running: running}, nil
	}
	return stale(ReasonIncomplete, "%s, more than %s ago: the export died", detail, r.cfg.InProgressTimeout), nil
}

// runARN is the execution ARN a record's run names: run itself if it is
// an execution ARN, the packaging machine's execution of that name if it
// is an execution name; "" otherwise, or when there is no Step Functions
// client to ask (a dry run).
func (r *run) runARN(run string) string {
	p := r.cfg.Packager
	switch {
	case p.Client == nil || run == "":
		return ""
	case strings.HasPrefix(run, "arn:") && strings.Contains(run, ":execution:"):
		return run
	case p.StateMachineARN != "" && validExecutionName(run):
		return sfn.ExecutionARN(p.StateMachineARN, run)
	}
	return ""
}

// validExecutionName: 1 to [MaxNameLen] letters, digits, '-' and '_', as
// [ExecutionName] makes them.
func validExecutionName(s string) bool {
	if s == "" || len(s) > MaxNameLen {
		return false
	}
	for _, c := range s {
		if !(c == '-' || c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}
