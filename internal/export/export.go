// Package export turns one Benchling export ZIP into the files of a Quilt
// package: entry.json read first, the archive extracted, README.md written
// last, and everything undone when a step fails. See docs/export.md.
package export

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"path/filepath"

	"benchling-webhook/internal/benchling"
	"benchling-webhook/internal/exitcode"
	"benchling-webhook/internal/extract"
	"benchling-webhook/internal/httprange"
	"benchling-webhook/internal/quiltpkg"
	"benchling-webhook/internal/store"
	"benchling-webhook/internal/workflow"
)

// Store is where an export writes: the sink for the archive's files and
// README.md, which also reads small objects back, lists the package, and
// puts back a file of the previous export when a run fails.
type Store interface {
	extract.Sink
	Get(ctx context.Context, key string, max int64) ([]byte, error)
	// List returns the objects below a key prefix (key, size).
	List(ctx context.Context, prefix string) ([]store.ObjectInfo, error)
	// Restore puts back f as recorded and returns it as now stored
	// ([store.ErrCannotRestore] when the store kept no copy).
	Restore(ctx context.Context, f quiltpkg.RecordFile) (quiltpkg.RecordFile, error)
	// Versioned reports whether Restore can work at all.
	Versioned(ctx context.Context) (bool, error)
}

// backupStore is a store that keeps the files a run replaces itself
// ([store.Dir]) rather than by versions.
type backupStore interface {
	StartBackup(prefix string) error
	DropBackup() error
}

var (
	_ Store       = (*store.S3)(nil)
	_ Store       = (*store.Dir)(nil)
	_ backupStore = (*store.Dir)(nil)
)

// Config is one export. Its values are checked and normalised by the
// caller (job export validates its flags); Run does not check them again.
type Config struct {
	// Source is the export ZIP: an https URL (Benchling's presigned S3
	// link), or a local path or file:// URL.
	Source string
	// Refresh, if set, is asked for a new Source URL when the current one
	// is refused (an expired link); see [httprange.Options.Refresh].
	Refresh func(ctx context.Context) (string, error)
	// Store receives the files: a [store.S3] for Registry, a [store.Dir]
	// for LocalDir. Build the S3 one with [ContentType] when Readme is set.
	Store Store
	// PackageName is the key prefix, as [quiltpkg.CheckPrefix] returns it;
	// "" (a local folder only) writes at the folder's root.
	PackageName string
	// Registry is the bucket, for the README and messages; "" with LocalDir.
	Registry string
	// LocalDir is the folder Store writes below, for messages; "" for S3.
	LocalDir string
	// Readme reads entry.json before the download, refuses an archive with
	// the package's own names at its root ([quiltpkg.Reserved]), and writes
	// README.md after the archive's files.
	Readme bool
	// CatalogHost is the Quilt catalog's host, as
	// [quiltpkg.CheckCatalogHost] returns it; "" leaves the README without
	// catalog links.
	CatalogHost string
	// Manifest, if set, is a local path the stored files are written to as
	// JSON (key, size, CRC-32, ETag, version id).
	Manifest string
	// Extract configures the extraction (limits, concurrency, memory,
	// progress). Run sets its Prefix, Reserved and Logger; its
	// MaxTotalBytes also caps the download's spool file.
	Extract extract.Options
	// Logger receives the export's log lines; nil discards them.
	Logger *slog.Logger
	// Workflow, if set, checks the package against the bucket's Quilt
	// workflow (with Readme: entry.json is the package's metadata) after
	// entry.json is read and before anything is written, so a package the
	// workflow would refuse fails with exit 5 and the package unchanged
	// (docs/export.md, "Quilt workflows").
	Workflow *workflow.Checker
	// Extracted, if set, is called once the archive's files are stored
	// or have failed, before README.md: where a progress display ends.
	Extracted func()
}

// Result is what an export did.
type Result struct {
	// Result lists the files stored: none after a failure (the run was
	// rolled back), except a failure to write the manifest.
	extract.Result
	// Stats are the download's requests and bytes.
	Stats httprange.Stats
	// ArchiveSize is the size of the ZIP.
	ArchiveSize int64
	// Readme is README.md's key, when Readme wrote it.
	Readme string
}

// Run runs the export c describes, as a transaction on the package
// (docs/export.md, "Package integrity"): it journals what it will write
// in the package's record before the first write, writes in place, then
// removes the files of the previous export it did not write again and
// records what it wrote. After a failure the package holds the previous
// export again (restored from the bucket's versions, or a folder's
// backups), or, when that cannot be done, keeps the journal so that the
// package reads as incomplete. The error carries its exit code
// ([exitcode.Resolve]).
func Run(ctx context.Context, c Config) (Result, error) {
	log := c.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log.Info("export starting", "source", httprange.Redact(c.Source), "destination", c.Destination())
	t := &txn{c: c, log: log, rollbackTimeout: c.Extract.RollbackTimeout}
	if t.rollbackTimeout <= 0 {
		t.rollbackTimeout = defaultRollbackTimeout
	}
	// entry.json comes first: when it is missing or broken, the export
	// fails before downloading or writing anything.
	if c.Readme {
		var err error
		if t.entry, t.entryData, err = c.readEntry(ctx); err != nil {
			return Result{}, err
		}
		if t.inputData, err = c.readInput(ctx); err != nil {
			return Result{}, err
		}
		if err := c.checkWorkflow(ctx, log, t.entryData); err != nil {
			return Result{}, err
		}
	}
	if err := t.begin(ctx); err != nil {
		return Result{}, err
	}
	src, err := httprange.Open(ctx, c.Source, httprange.Options{
		MaxSpool: c.Extract.MaxTotalBytes,
		Logger:   log,
		Refresh:  c.Refresh,
	})
	if err != nil {
		t.end()
		if store.IsDiskFull(err) {
			// The spool file (a server without Range requests) filled
			// the temporary folder: the environment's fault, not the
			// network's, and a retry on the same disk cannot help.
			return Result{}, exitcode.Wrap(fmt.Errorf("open download: %w: the disk holding the temporary folder %s is full or read-only; free space or set TMPDIR", err, os.TempDir()), exitcode.Usage)
		}
		return Result{}, fmt.Errorf("open download: %w", err)
	}
	defer src.Close()

	opts := c.Extract
	opts.Prefix, opts.Logger = c.PackageName, log
	opts.KeepOnError = true
	opts.BeforeWrite = t.journal
	if c.Readme {
		opts.Reserved = quiltpkg.Reserved()
	}
	if c.PackageName == "" {
		opts.Reserved = append(opts.Reserved, quiltpkg.ControlDir)
	}
	res, err := extract.Run(ctx, src, c.Store, opts)
	if c.Extracted != nil {
		c.Extracted()
	}
	out := Result{Stats: src.Stats(), ArchiveSize: src.Size()}
	t.touch(res.Attempted...)
	for _, f := range res.Files {
		t.wrote(f.Key, f.Size, parseCRC(f.CRC32), extract.Object{ETag: f.ETag, VersionID: f.VersionID})
	}
	if err != nil {
		t.fail(ctx)
		return out, err
	}
	if c.Readme {
		key, err := t.writeMetadata(ctx, res)
		if err != nil {
			t.fail(ctx)
			return out, err
		}
		log.Info("readme written", "key", key)
		out.Readme = key
	}
	if err := t.commit(ctx); err != nil {
		t.fail(ctx)
		return out, err
	}
	out.Result = res
	if c.Manifest != "" {
		if err := writeManifest(c.Manifest, res.Files); err != nil {
			return out, err
		}
	}
	return out, nil
}

// ContentType is the S3 store's content type rule for package pkg:
// README.md is served as Markdown (the archive cannot hold a file at that
// key, as README.md is reserved with Readme), every other key gets none.
func ContentType(pkg string) func(key string) string {
	readmeKey := quiltpkg.Key(pkg, quiltpkg.ReadmeName)
	return func(key string) string {
		if key == readmeKey {
			return quiltpkg.ReadmeContentType
		}
		return ""
	}
}

// Destination names where the files go, for messages and the result
// line: s3://bucket/prefix/ or the local folder.
func (c Config) Destination() string {
	if c.LocalDir != "" {
		return filepath.Join(c.LocalDir, filepath.FromSlash(c.PackageName))
	}
	return "s3://" + c.Registry + "/" + c.PackageName + "/"
}

// location names key in the destination for messages.
func (c Config) location(key string) string {
	if c.LocalDir != "" {
		return filepath.Join(c.LocalDir, filepath.FromSlash(key))
	}
	return "s3://" + c.Registry + "/" + key
}

// readEntry reads and decodes the entry: the staged entry.json the
// state machine wrote to the package's control folder
// (quiltpkg.ControlKey(pkg, quiltpkg.EntryName)), or, when there is none
// (an operator running the export by hand), the package's own
// <prefix>/entry.json. Neither there, it is a configuration error (exit
// 2): the state machine must write it before it runs the export. Not an
// entry, or not the entry the package is named after (a last path element
// that is an entry id), it is bad input (exit 3). Other read errors keep
// the store's codes: 2 for a configuration error (no such bucket, access
// denied), 4 for network and 5xx errors.
func (c Config) readEntry(ctx context.Context) (benchling.Entry, []byte, error) {
	data, where, err := c.readStaged(ctx, quiltpkg.EntryName, quiltpkg.MaxEntryBytes)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return benchling.Entry{}, nil, exitcode.Wrap(fmt.Errorf("read %s: not found: with --readme the state machine must write %s before the export runs (staged at %s, or in the package)",
			c.location(quiltpkg.Key(c.PackageName, quiltpkg.EntryName)), quiltpkg.EntryName, c.location(quiltpkg.ControlKey(c.PackageName, quiltpkg.EntryName))), exitcode.Usage)
	case errors.Is(err, store.ErrTooLarge):
		return benchling.Entry{}, nil, fmt.Errorf("read %s: larger than %d MiB, too large for an entry: %w", where, quiltpkg.MaxEntryBytes>>20, store.ErrTooLarge)
	case err != nil:
		return benchling.Entry{}, nil, fmt.Errorf("read %s: %w", quiltpkg.EntryName, err)
	}
	entry, err := benchling.DecodeEntry(data)
	if err != nil {
		return benchling.Entry{}, nil, fmt.Errorf("read %s: %w", where, err)
	}
	if id := path.Base(c.PackageName); quiltpkg.ValidEntryID(id) && entry.ID != id {
		return benchling.Entry{}, nil, exitcode.Wrap(fmt.Errorf("read %s: %s names %s but the package is %s", where, quiltpkg.EntryName, entry.ID, c.PackageName), exitcode.BadInput)
	}
	return entry, data, nil
}

// workflowMessage is what the check takes for the commit message: the
// packaging state machine always sends one ("Benchling webhook payload -
// <event time>"), so a workflow's is_message_required is met.
const workflowMessage = "Benchling webhook payload"

// checkWorkflow runs c.Workflow's check on the entry, if there is one.
func (c Config) checkWorkflow(ctx context.Context, log *slog.Logger, entry []byte) error {
	if c.Workflow == nil {
		return nil
	}
	res, err := c.Workflow.Check(ctx, workflow.Package{Name: c.PackageName, Message: workflowMessage, Metadata: entry})
	if err != nil {
		return err
	}
	if res.Config {
		log.Info("quilt workflow check passed", "workflow", res.Workflow, "config", "s3://"+c.Workflow.Bucket+"/"+workflow.ConfigKey)
	}
	if res.EntriesSchema != "" {
		log.Warn("quilt workflow entries_schema not checked here; Quilt checks it", "workflow", res.Workflow, "schema", res.EntriesSchema)
	}
	return nil
}

// readInput reads input.json like entry.json: staged, else the package's
// own; nil when neither exists (the package then has none).
func (c Config) readInput(ctx context.Context) ([]byte, error) {
	data, where, err := c.readStaged(ctx, quiltpkg.InputName, quiltpkg.MaxEntryBytes)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, nil
	case errors.Is(err, store.ErrTooLarge):
		return nil, fmt.Errorf("read %s: larger than %d MiB: %w", where, quiltpkg.MaxEntryBytes>>20, store.ErrTooLarge)
	case err != nil:
		return nil, fmt.Errorf("read %s: %w", quiltpkg.InputName, err)
	}
	return data, nil
}

// readStaged reads the staged control object name, or the package's own
// file of that name when none is staged, and says which it read.
func (c Config) readStaged(ctx context.Context, name string, max int64) ([]byte, string, error) {
	key := quiltpkg.ControlKey(c.PackageName, name)
	data, err := c.Store.Get(ctx, key, max)
	if errors.Is(err, store.ErrNotFound) {
		key = quiltpkg.Key(c.PackageName, name)
		data, err = c.Store.Get(ctx, key, max)
	}
	return data, c.location(key), err
}

func writeManifest(path string, files []extract.Object) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return exitcode.Wrap(fmt.Errorf("write manifest: %w", err), exitcode.Usage)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("write manifest: %w", cerr)
		}
	}()
	enc := json.NewEncoder(f)
	enc.SetIndent("", "  ")
	if err := enc.Encode(files); err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	return nil
}
