package export

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"benchling-webhook/internal/benchling"
	"benchling-webhook/internal/extract"
	"benchling-webhook/internal/quiltpkg"
	"benchling-webhook/internal/render"
	"benchling-webhook/internal/store"
)

// defaultRollbackTimeout bounds a rollback (its deletes and restores
// together) when the extractor's RollbackTimeout is not set: extract's
// own default, inside the 30 s ECS allows after SIGTERM.
const defaultRollbackTimeout = 15 * time.Second

// maxRecordBytes bounds a record read back: about 200 bytes a file, for
// the extractor's 100,000 entries at most, twice (Previous and Planned).
const maxRecordBytes = 64 << 20

// restoreConcurrency is the number of files put back at once.
const restoreConcurrency = 16

// txn is one export as a transaction on the package: the record it found,
// what it planned, touched and wrote. See docs/export.md, "Package
// integrity".
type txn struct {
	c               Config
	log             *slog.Logger
	rollbackTimeout time.Duration

	entry     benchling.Entry
	entryData []byte // the entry.json to copy into the package
	inputData []byte // the input.json to copy, nil for none

	recordKey string
	started   time.Time
	versioned bool
	backups   bool                  // the store keeps its own backups (a folder)
	complete  *quiltpkg.Record      // the last complete record, if the last run completed
	previous  []quiltpkg.RecordFile // what the package held: complete files, then unfinished keys
	dead      bool                  // the last run died: its record is in progress
	journaled bool                  // the in-progress record has been written (or tried)
	failed    bool                  // fail has run
	planned   []string

	mu      sync.Mutex
	touched map[string]bool                // every key this run may have written or deleted
	written map[string]quiltpkg.RecordFile // every file this run wrote, as stored
}

// begin reads the package's record, checks the bucket's versioning and,
// for a folder, starts its backups. It writes nothing to the package.
func (t *txn) begin(ctx context.Context) error {
	t.recordKey = quiltpkg.ControlKey(t.c.PackageName, quiltpkg.RecordName)
	t.started = time.Now().UTC()
	t.touched = map[string]bool{}
	t.written = map[string]quiltpkg.RecordFile{}
	if bs, ok := t.c.Store.(backupStore); ok {
		t.backups = true
		if err := bs.StartBackup(quiltpkg.ControlPrefix(t.c.PackageName) + "/backup"); err != nil {
			return fmt.Errorf("recover the backups of a run that died: %w", err)
		}
	}
	v, err := t.c.Store.Versioned(ctx)
	switch {
	case err != nil:
		t.log.Warn("bucket versioning unknown: a failed export may not be able to restore the previous one", "error", err.Error())
	case !v:
		t.log.Warn("bucket not versioned: a failed export cannot restore the files it replaced, and leaves the package marked incomplete until an export succeeds (docs/export.md, \"Package integrity\")",
			"destination", t.c.Destination())
	}
	t.versioned = v || err != nil // unknown: try, a restore without a version fails on its own
	data, err := t.c.Store.Get(ctx, t.recordKey, maxRecordBytes)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		t.end()
		return fmt.Errorf("read the package record %s: %w", t.c.location(t.recordKey), err)
	}
	rec, err := quiltpkg.DecodeRecord(data)
	if err != nil {
		t.log.Warn("package record unreadable: the files it listed count as added by hand", "key", t.recordKey, "error", err.Error())
		return nil
	}
	if rec.State == quiltpkg.RecordComplete {
		t.complete = &rec
		t.previous = slices.Clone(rec.Files)
		return nil
	}
	// A run died (SIGKILL, a lost task) or could not roll back: everything
	// it planned may be there, besides what the package held before it.
	t.dead = true
	t.log.Warn("the last export of this package did not finish: this one repairs it", "key", t.recordKey, "run", rec.Run, "startedAt", rec.StartedAt)
	t.previous = slices.Clone(rec.Previous)
	have := map[string]bool{}
	for _, f := range t.previous {
		have[f.Key] = true
	}
	for _, k := range rec.Planned {
		if !have[k] {
			have[k] = true
			t.previous = append(t.previous, quiltpkg.RecordFile{Key: k, Unfinished: true})
		}
	}
	return nil
}

// end releases what begin started, when the run ends before its journal.
func (t *txn) end() {
	if bs, ok := t.c.Store.(backupStore); ok {
		_ = bs.DropBackup()
	}
}

// metadataKeys are the package's own files this export writes.
func (t *txn) metadataKeys() []string {
	if !t.c.Readme {
		return nil
	}
	keys := []string{quiltpkg.Key(t.c.PackageName, quiltpkg.EntryName)}
	if t.inputData != nil {
		keys = append(keys, quiltpkg.Key(t.c.PackageName, quiltpkg.InputName))
	}
	return append(keys, quiltpkg.Key(t.c.PackageName, quiltpkg.ReadmeName))
}

// journal writes the in-progress record: every key this run will write,
// and what the package held before. The extractor calls it once the
// archive is checked, before its first write.
func (t *txn) journal(ctx context.Context, keys []string) error {
	t.planned = append(slices.Clone(keys), t.metadataKeys()...)
	rec := quiltpkg.Record{
		Package:   t.c.PackageName,
		State:     quiltpkg.RecordInProgress,
		Run:       "job export " + t.started.Format(time.RFC3339),
		StartedAt: t.started,
		Planned:   t.planned,
		Previous:  t.previous,
	}
	t.journaled = true
	if err := t.putRecord(ctx, rec); err != nil {
		t.fail(ctx)
		return err
	}
	return nil
}

// putRecord writes rec at the record key.
func (t *txn) putRecord(ctx context.Context, rec quiltpkg.Record) error {
	b, err := rec.Encode()
	if err != nil {
		return fmt.Errorf("encode the package record: %w", err)
	}
	if _, err := t.c.Store.Put(ctx, t.recordKey, bytes.NewReader(b), int64(len(b)), crc32.ChecksumIEEE(b)); err != nil {
		return fmt.Errorf("write the package record %s: %w", t.c.location(t.recordKey), err)
	}
	return nil
}

// touch notes keys this run may have written.
func (t *txn) touch(keys ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys {
		t.touched[k] = true
	}
}

// wrote notes a file this run stored.
func (t *txn) wrote(key string, size int64, crc uint32, obj extract.Object) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.touched[key] = true
	t.written[key] = quiltpkg.RecordFile{Key: key, Size: size, CRC32: crc, ETag: obj.ETag, VersionID: obj.VersionID}
}

// put stores data at key as one of the package's own files.
func (t *txn) put(ctx context.Context, key string, data []byte) error {
	t.touch(key)
	crc := crc32.ChecksumIEEE(data)
	obj, err := t.c.Store.Put(ctx, key, bytes.NewReader(data), int64(len(data)), crc)
	if err != nil {
		return fmt.Errorf("write %s: %w", path.Base(key), err)
	}
	t.wrote(key, int64(len(data)), crc, obj)
	return nil
}

// writeMetadata copies entry.json and input.json into the package and
// writes README.md, which lists the archive's files and the files a
// person added. It returns README.md's key.
func (t *txn) writeMetadata(ctx context.Context, res extract.Result) (string, error) {
	if err := t.put(ctx, quiltpkg.Key(t.c.PackageName, quiltpkg.EntryName), t.entryData); err != nil {
		return "", err
	}
	if t.inputData != nil {
		if err := t.put(ctx, quiltpkg.Key(t.c.PackageName, quiltpkg.InputName), t.inputData); err != nil {
			return "", err
		}
	}
	added, err := t.added(ctx)
	if err != nil {
		return "", err
	}
	files := make([]render.File, len(res.Files))
	for i, f := range res.Files {
		files[i] = render.File{Name: f.Name, Size: f.Size}
	}
	key := quiltpkg.Key(t.c.PackageName, quiltpkg.ReadmeName)
	b, err := render.New().README(render.READMEData{
		Entry: t.entry, Files: files, Added: added, PackageName: t.c.PackageName, Registry: t.c.Registry, CatalogHost: t.c.CatalogHost,
	})
	if err != nil {
		return key, err
	}
	return key, t.put(ctx, key, b)
}

// packagePrefix is the key prefix of the package's files.
func (t *txn) packagePrefix() string {
	if t.c.PackageName == "" {
		return ""
	}
	return t.c.PackageName + "/"
}

// inPackage reports whether key is one of the package's files (below its
// prefix, not a control object).
func (t *txn) inPackage(key string) bool {
	if !strings.HasPrefix(key, t.packagePrefix()) {
		return false
	}
	control := quiltpkg.ControlPrefix(t.c.PackageName)
	return !strings.HasPrefix(key, control[:strings.LastIndex(control, "/")+1])
}

// ownFile reports whether key is one of the package's own files
// (entry.json, input.json, README.md), which only --readme writes.
func (t *txn) ownFile(key string) bool {
	for _, name := range quiltpkg.Reserved() {
		if key == quiltpkg.Key(t.c.PackageName, name) {
			return true
		}
	}
	return false
}

// added lists the package's files that no record holds and this run did
// not plan: files a person added (one listing of the prefix).
func (t *txn) added(ctx context.Context) ([]render.File, error) {
	owned := map[string]bool{}
	for _, f := range t.previous {
		owned[f.Key] = true
	}
	for _, k := range t.planned {
		owned[k] = true
	}
	objs, err := t.c.Store.List(ctx, t.packagePrefix())
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", t.c.Destination(), err)
	}
	var files []render.File
	for _, o := range objs {
		if !owned[o.Key] && t.inPackage(o.Key) {
			files = append(files, render.File{Name: strings.TrimPrefix(o.Key, t.packagePrefix()), Size: o.Size})
		}
	}
	return files, nil
}

// commit removes the files of earlier exports this one did not write,
// then writes the complete record, and drops a folder's backups.
func (t *txn) commit(ctx context.Context) error {
	var stale []string
	var carried []quiltpkg.RecordFile // the package's own files, kept by an export without --readme
	for _, f := range t.previous {
		if _, ok := t.written[f.Key]; ok || !t.inPackage(f.Key) {
			continue
		}
		if !t.c.Readme && !f.Unfinished && t.ownFile(f.Key) {
			carried = append(carried, f)
			continue
		}
		stale = append(stale, f.Key)
	}
	if len(stale) > 0 {
		t.touch(stale...)
		if err := t.c.Store.Delete(ctx, stale); err != nil {
			return fmt.Errorf("remove %d files of the previous export: %w", len(stale), err)
		}
		t.log.Info("removed the files of the previous export that this one does not hold", "files", len(stale))
	}
	now := time.Now().UTC()
	rec := quiltpkg.Record{
		Package:     t.c.PackageName,
		State:       quiltpkg.RecordComplete,
		Run:         "job export " + t.started.Format(time.RFC3339),
		StartedAt:   t.started,
		CompletedAt: &now,
		// The version job reconcile compares with Benchling's (zero without
		// --readme, which reads no entry: reconcile then reads entry.json).
		EntryModifiedAt: t.entry.ModifiedAt,
	}
	for _, k := range t.planned {
		if f, ok := t.written[k]; ok {
			rec.Files = append(rec.Files, f)
		}
	}
	rec.Files = append(rec.Files, carried...)
	if err := t.putRecord(ctx, rec); err != nil {
		return err
	}
	if bs, ok := t.c.Store.(backupStore); ok {
		if err := bs.DropBackup(); err != nil {
			t.log.Warn("backups of the previous export not removed", "error", err.Error())
		}
	}
	return nil
}

// fail rolls the package back to what it held before this run: the files
// of the previous complete export are put back as recorded, every other
// key this run (or a run that died) may have written is deleted, and the
// record is the previous one again. When a file cannot be put back (an
// unversioned bucket), nothing is undone and the in-progress record stays,
// so the package reads as incomplete until an export succeeds. Runs with
// a fresh context bounded by the rollback timeout, so it also works after
// a cancellation (SIGTERM).
func (t *txn) fail(ctx context.Context) {
	if t.failed {
		return
	}
	t.failed = true
	if !t.journaled {
		t.end()
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), t.rollbackTimeout)
	defer cancel()
	t.mu.Lock()
	touchedSet := t.touched
	touched := maps(t.touched)
	written := t.written
	t.mu.Unlock()

	var restore, kept []quiltpkg.RecordFile
	restoring := map[string]bool{}
	var remove []string
	for _, f := range t.previous {
		switch {
		case f.Unfinished:
			remove = append(remove, f.Key)
			restoring[f.Key] = true // handled: removed below
		case touchedSet[f.Key] || (t.dead && !t.backups):
			restore = append(restore, f)
			restoring[f.Key] = true
		default:
			kept = append(kept, f)
		}
	}
	for _, k := range touched {
		if !restoring[k] {
			remove = append(remove, k)
		}
	}
	slices.Sort(remove)
	remove = slices.Compact(remove)
	if len(restore) > 0 && !t.backups && !t.versioned {
		t.log.Error("export failed and cannot be rolled back (the bucket keeps no versions): the package stays marked incomplete until an export succeeds",
			"key", t.recordKey, "filesReplaced", len(restore))
		return
	}
	var errs []error
	if len(remove) > 0 {
		if err := t.c.Store.Delete(ctx, remove); err != nil {
			errs = append(errs, err)
		}
	}
	restored := make([]quiltpkg.RecordFile, len(restore))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(restoreConcurrency)
	copies := 0
	for i, f := range restore {
		if w, ok := written[f.Key]; ok && sameBytes(w, f) {
			// This run stored the same bytes again (same S3 ETag, the
			// MD5 of the bytes or of their parts, and size): that is the
			// recorded file already, at its new version.
			restored[i] = w
			continue
		}
		copies++
		g.Go(func() error {
			nf, err := t.c.Store.Restore(gctx, f)
			restored[i] = nf
			return err
		})
	}
	if err := g.Wait(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		t.log.Error("rollback failed: the package stays marked incomplete until an export succeeds", "key", t.recordKey, "error", err.Error())
		return
	}
	if t.complete == nil && len(restore) == 0 && len(kept) == 0 {
		// No export completed before this one: the package is empty again.
		if err := t.c.Store.Delete(ctx, []string{t.recordKey}); err != nil {
			t.log.Error("rollback: package record not removed", "key", t.recordKey, "error", err.Error())
			return
		}
	} else if err := t.putRecord(ctx, t.previousRecord(restored, kept)); err != nil {
		t.log.Error("rollback: previous package record not put back", "key", t.recordKey, "error", err.Error())
		return
	}
	if bs, ok := t.c.Store.(backupStore); ok {
		_ = bs.DropBackup()
	}
	t.log.Warn("rolled back: the package holds the previous export again", "restored", copies, "unchanged", len(restore)-copies, "removed", len(remove))
}

// previousRecord is the record of the previous complete export, with the
// files fail put back as they are now stored, in the record's order.
func (t *txn) previousRecord(restored, kept []quiltpkg.RecordFile) quiltpkg.Record {
	now := map[string]quiltpkg.RecordFile{}
	for _, f := range append(slices.Clone(kept), restored...) {
		now[f.Key] = f
	}
	var rec quiltpkg.Record
	if t.complete != nil {
		rec = *t.complete
	} else {
		done := time.Now().UTC()
		rec = quiltpkg.Record{Package: t.c.PackageName, State: quiltpkg.RecordComplete, Run: "job export rollback", StartedAt: t.started, CompletedAt: &done}
	}
	rec.Files = nil
	for _, f := range t.previous {
		if nf, ok := now[f.Key]; ok {
			rec.Files = append(rec.Files, nf)
		}
	}
	return rec
}

// sameBytes reports whether w, a file this run stored, holds the bytes of
// f, the recorded one: same size, CRC-32 and a non-empty ETag (S3's MD5
// of the bytes, or of the same parts). A folder gives no ETag: its files
// are always put back from the backups.
func sameBytes(w, f quiltpkg.RecordFile) bool {
	return w.ETag != "" && w.ETag == f.ETag && w.Size == f.Size && w.CRC32 == f.CRC32
}

// maps returns the keys of m, sorted.
func maps(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// parseCRC parses the extractor's 8 hex digits.
func parseCRC(s string) uint32 {
	v, _ := strconv.ParseUint(s, 16, 32)
	return uint32(v)
}
