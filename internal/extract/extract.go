// Package extract streams the entries of a hostile ZIP archive into a
// store (S3 or a local folder) with bounded memory, checking everything it
// can before the first write and undoing its writes when it fails. See
// docs/export.md; the format is PKWARE's APPNOTE.TXT.
package extract

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"benchling-webhook/internal/readers"
)

// Source is the archive. ReadAt serves the central directory; Stream serves
// a sequential range of entry data. Both must be safe for concurrent use.
type Source interface {
	io.ReaderAt
	Size() int64
	Stream(ctx context.Context, off, n int64) io.ReadCloser
}

// Sink stores entries. Implementations must be safe for concurrent use.
type Sink interface {
	// Put stores the size bytes read from body under key. crc is the
	// CRC-32 (IEEE) the data must have; a store may pass it on so that the
	// server checks it too. When body fails, Put must leave nothing behind
	// (no object, no pending multipart upload) and return an error that
	// wraps body's error.
	Put(ctx context.Context, key string, body io.Reader, size int64, crc uint32) (Object, error)
	// Delete removes objects this run wrote. It is used to roll back.
	Delete(ctx context.Context, keys []string) error
}

// Object describes one stored entry.
type Object struct {
	Key       string `json:"key"`
	Name      string `json:"name"` // the entry's path in the archive
	Size      int64  `json:"size"`
	CRC32     string `json:"crc32"` // 8 hex digits, as in the archive
	ETag      string `json:"etag,omitempty"`
	VersionID string `json:"versionId,omitempty"`
}

// Defaults for [Options].
const (
	DefaultConcurrency   = 16
	DefaultBufferMemory  = 60 << 20
	DefaultMaxEntries    = 100_000
	DefaultMaxTotalBytes = 50 << 30
	// DefaultSmallEntry is S3's minimum part size, also job export's
	// --part-size default: an entry that fits in one part is small.
	DefaultSmallEntry = 5 << 20
	// groupSpan bounds one Range request over a run of small entries.
	groupSpan = 16 << 20
)

// Options configure [Run]. The zero value of each field means its default.
type Options struct {
	// Prefix is put before every entry name, with a slash: "benchling/etr_1".
	// It must have been checked with quiltpkg.CheckPrefix.
	Prefix string
	// Concurrency is the number of entries stored at once (default 16).
	// Small entries cost little, so many in flight hide the latency of
	// each request; BufferMemory bounds what they hold.
	Concurrency int
	// BufferMemory bounds the memory held by entries in flight (default
	// 60 MiB): a small entry counts its size, a large one LargeEntryMemory.
	// At least one entry is always in flight.
	BufferMemory int64
	// LargeEntryMemory is what one streamed entry holds in the store's
	// buffers (for S3: (part concurrency + 3) × part size). Default
	// 3 × SmallEntry.
	LargeEntryMemory int64
	// MaxEntries caps the number of entries, directories included (default 100,000).
	MaxEntries int
	// MaxTotalBytes caps the sum of the declared uncompressed sizes (default 50 GiB).
	MaxTotalBytes int64
	// SmallEntry: entries up to this size are decompressed into memory,
	// checked, and then stored with one request; larger ones are streamed.
	// Default [DefaultSmallEntry].
	SmallEntry int64
	// RequestGrace is how long a store request already under way may go
	// on after a failure or a cancellation (default 8 s). A request cut off
	// in flight may still be committed by the server after the rollback has
	// run; letting it finish makes its outcome known. Streamed bodies stop
	// at once, which aborts their multipart uploads.
	RequestGrace time.Duration
	// RollbackTimeout bounds the clean-up after a failure (default 15 s;
	// with RequestGrace inside the 30 s ECS allows after SIGTERM).
	RollbackTimeout time.Duration
	// Reserved are names at the package root that the archive must not
	// use, because the caller writes its own files there (README.md,
	// entry.json, …). An entry with such a name, or below a folder with
	// such a name, fails the plan with [ErrReservedName] before anything is
	// written. Compared exactly (case-sensitive, like S3 keys).
	Reserved []string
	// KeepOnError makes [Run] leave what a failed run wrote in place and
	// return the keys it started a Put for in [Result.Attempted]: the
	// caller rolls back (job export restores the previous export).
	KeepOnError bool
	// BeforeWrite, if set, is called once the central directory has been
	// checked and before the first write, with every key the run will
	// write, in archive order; an error ends the run with nothing written.
	BeforeWrite func(ctx context.Context, keys []string) error
	// Logger receives diagnostics; default: discard.
	Logger *slog.Logger
	// Progress, if set, is updated as entries are stored.
	Progress *Progress
}

// Progress counts work done. All fields are safe for concurrent use; the
// totals are set once the central directory has been checked.
type Progress struct {
	FilesTotal, BytesTotal atomic.Int64
	FilesDone, BytesDone   atomic.Int64 // BytesDone counts decompressed bytes as they stream
}

// Result is what Run stored.
type Result struct {
	Files []Object // in archive order
	Dirs  int      // directory entries (they create no object)
	Bytes int64    // total uncompressed bytes stored
	// Attempted, after a failure with [Options.KeepOnError], lists every
	// key a Put was started for: each may have been written. Files then
	// lists the ones known stored.
	Attempted []string
}

// Run extracts every file of the archive in src into sink. See the package
// documentation for the checks. On error, objects already written by this
// run are deleted before Run returns.
func Run(ctx context.Context, src Source, sink Sink, opts Options) (Result, error) {
	opts.setDefaults()
	entries, dirs, err := plan(src, opts)
	if err != nil {
		return Result{}, err
	}
	var total int64
	for _, e := range entries {
		total += e.usize
	}
	if opts.Progress != nil {
		opts.Progress.FilesTotal.Store(int64(len(entries)))
		opts.Progress.BytesTotal.Store(total)
	}
	opts.Logger.Info("archive checked", "files", len(entries), "dirs", dirs, "bytes", total, "archiveBytes", src.Size())
	if opts.BeforeWrite != nil {
		keys := make([]string, len(entries))
		for i, e := range entries {
			keys[i] = e.key
		}
		if err := opts.BeforeWrite(ctx, keys); err != nil {
			return Result{}, err
		}
	}

	x := &extractor{src: src, sink: sink, opts: opts, objects: make([]Object, len(entries))}
	err = x.run(ctx, entries)
	if err != nil {
		if opts.KeepOnError {
			x.mu.Lock()
			defer x.mu.Unlock()
			res := Result{Attempted: slices.Clone(x.attempted)}
			for _, o := range x.objects {
				if o.Key != "" {
					res.Files = append(res.Files, o)
				}
			}
			return res, err
		}
		x.rollback(ctx)
		return Result{}, err
	}
	return Result{Files: x.objects, Dirs: dirs, Bytes: total}, nil
}

func (o *Options) setDefaults() {
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = DefaultMaxEntries
	}
	if o.MaxTotalBytes <= 0 {
		o.MaxTotalBytes = DefaultMaxTotalBytes
	}
	if o.SmallEntry <= 0 {
		o.SmallEntry = DefaultSmallEntry
	}
	if o.BufferMemory <= 0 {
		o.BufferMemory = DefaultBufferMemory
	}
	if o.LargeEntryMemory <= 0 {
		o.LargeEntryMemory = 3 * o.SmallEntry
	}
	if o.RequestGrace <= 0 {
		o.RequestGrace = 8 * time.Second
	}
	if o.RollbackTimeout <= 0 {
		o.RollbackTimeout = 15 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// extractor runs one extraction.
type extractor struct {
	src    Source
	sink   Sink
	opts   Options
	dec    decoders
	bufs   bufferPool
	mem    *semaphore.Weighted                                       // BufferMemory
	submit func(weight int64, job func(context.Context) error) error // hands a job to the pool; the job releases weight

	mu        sync.Mutex
	objects   []Object // by entry index; Key == "" until stored
	attempted []string // keys a Put was started for
}

// run streams all entries. This goroutine walks the archive in order: a
// large entry becomes a job that streams from its own Range request into the
// sink; a run of small neighbours is read with one request here,
// decompressed into memory and checked, each becoming a job that stores it.
// A fixed pool of Concurrency workers runs the jobs (long-lived goroutines
// keep their grown stacks for the SDK's deep call chains), and a weighted
// semaphore keeps the memory of entries in flight within BufferMemory.
func (x *extractor) run(ctx context.Context, entries []*entry) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	g, gctx := errgroup.WithContext(ctx)
	jobs := make(chan func(context.Context) error)
	for range x.opts.Concurrency {
		g.Go(func() error {
			for job := range jobs {
				if err := job(gctx); err != nil {
					return err
				}
			}
			return nil
		})
	}
	x.mem = semaphore.NewWeighted(x.opts.BufferMemory)
	x.submit = func(weight int64, job func(context.Context) error) error {
		select {
		case jobs <- func(ctx context.Context) error {
			defer x.mem.Release(weight)
			return job(ctx)
		}:
			return nil
		case <-gctx.Done():
			x.mem.Release(weight)
			return gctx.Err()
		}
	}

	var dispatchErr error
	for i := 0; i < len(entries) && dispatchErr == nil; {
		e := entries[i]
		if e.usize > x.opts.SmallEntry {
			w := x.weight(x.opts.LargeEntryMemory)
			if dispatchErr = x.mem.Acquire(gctx, w); dispatchErr != nil {
				break
			}
			idx := i
			dispatchErr = x.submit(w, func(ctx context.Context) error { return x.large(ctx, idx, e) })
			i++
			continue
		}
		j := i + 1
		for j < len(entries) && entries[j].usize <= x.opts.SmallEntry && entries[j].end-e.off <= groupSpan {
			j++
		}
		dispatchErr = x.smallRun(gctx, entries, i, j)
		i = j
	}
	close(jobs)
	if dispatchErr != nil {
		cancel(dispatchErr)
	}
	err := g.Wait()
	if dispatchErr != nil && (err == nil || errors.Is(err, context.Canceled)) {
		err = dispatchErr
	}
	if err == nil {
		err = ctx.Err()
	}
	if err != nil && errors.Is(err, context.Canceled) && context.Cause(ctx) != nil && !errors.Is(context.Cause(ctx), context.Canceled) {
		err = context.Cause(ctx)
	}
	return err
}

// weight caps w at the whole budget, so that one entry can always run.
func (x *extractor) weight(w int64) int64 {
	return min(max(w, 1), x.opts.BufferMemory)
}

// large streams one entry from its own Range request into the sink.
func (x *extractor) large(ctx context.Context, idx int, e *entry) (err error) {
	rc := x.src.Stream(ctx, e.off, e.end-e.off)
	defer rc.Close()
	br := bufio.NewReaderSize(&rawReader{r: rc}, 64<<10)
	if _, err := readLocalHeader(br, e); err != nil {
		return err
	}
	// For deflate, dec.open puts a bufio.Reader in front: the decoder's fast path.
	body, release, err := x.dec.open(e, &limitedReader{br: br, n: e.csize})
	if err != nil {
		return err
	}
	defer release()
	// The body stops with ctx (the upload then aborts); the requests get
	// the grace period.
	return x.put(ctx, idx, e, readers.WithContext(ctx, newCheckReader(e, body, x.progressBytes())))
}

// smallRun reads entries[i:j] (neighbours in the archive) with one Range
// request, and stores each through the pool once it is in memory and checked.
func (x *extractor) smallRun(ctx context.Context, entries []*entry, i, j int) error {
	start, end := entries[i].off, entries[j-1].end
	rc := x.src.Stream(ctx, start, end-start)
	defer rc.Close()
	br := bufio.NewReaderSize(&rawReader{r: rc}, 64<<10)
	pos := start
	for k := i; k < j; k++ {
		e := entries[k]
		if e.off < pos {
			return fmt.Errorf("%w: entry %q starts at %d, inside the previous entry", ErrOverlap, e.name, e.off)
		}
		if _, err := br.Discard(int(e.off - pos)); err != nil {
			return fmt.Errorf("entry %q: skip to its header: %w", e.name, srcErr(err, ErrTruncated))
		}
		hlen, err := readLocalHeader(br, e)
		if err != nil {
			return err
		}
		w := x.weight(bufSize(e.usize))
		if err := x.mem.Acquire(ctx, w); err != nil {
			return err
		}
		buf, err := x.readSmall(br, e)
		if err != nil {
			x.mem.Release(w)
			return err
		}
		pos = e.off + hlen + e.csize
		idx := k
		err = x.submit(w, func(ctx context.Context) error {
			if p := x.opts.Progress; p != nil {
				p.BytesDone.Add(int64(len(buf)))
			}
			defer x.bufs.put(buf)
			return x.put(ctx, idx, e, bytes.NewReader(buf))
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// readSmall reads e's compressed data from br (positioned after its local
// header), decompresses and checks it, and returns it in a pooled buffer.
// Compressed data is first copied into a pooled buffer of its own when it
// is no larger than the output: the decoders are much faster on a
// *bytes.Reader than on a generic byte reader.
func (x *extractor) readSmall(br *bufio.Reader, e *entry) (buf []byte, err error) {
	lr := &limitedReader{br: br, n: e.csize}
	var raw io.Reader = lr
	if e.method != methodStore && e.csize <= bufSize(e.usize) {
		cbuf := x.bufs.get(e.csize)
		defer x.bufs.put(cbuf)
		n, err := io.ReadFull(br, cbuf)
		lr.n -= int64(n)
		if err != nil {
			return nil, fmt.Errorf("entry %q: %w", e.name, srcErr(err, ErrTruncated))
		}
		raw = bytes.NewReader(cbuf)
	}
	body, release, err := x.dec.open(e, raw)
	if err != nil {
		return nil, err
	}
	buf = x.bufs.get(e.usize)
	cr := newCheckReader(e, body, nil)
	_, err = io.ReadFull(cr, buf)
	if err == nil {
		err = expectEOF(cr)
	}
	release()
	if err == nil {
		// Skip compressed bytes the decoder did not need.
		if err = lr.rest(); err != nil {
			err = fmt.Errorf("entry %q: %w", e.name, srcErr(err, ErrTruncated))
		}
	}
	if err != nil {
		x.bufs.put(buf)
		if errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, ErrTruncated) {
			err = fmt.Errorf("%w: entry %q: %w", ErrTruncated, e.name, err)
		}
		return nil, err
	}
	return buf, nil
}

// expectEOF reads from a checkReader that has delivered the declared size:
// the next read must be EOF, after the CRC check.
func expectEOF(r io.Reader) error {
	var b [1]byte
	for {
		n, err := r.Read(b[:])
		if n > 0 {
			return errors.New("extract: data after the declared size") // checkReader reports this first
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (x *extractor) progressBytes() *atomic.Int64 {
	if x.opts.Progress == nil {
		return nil
	}
	return &x.opts.Progress.BytesDone
}

func (x *extractor) put(ctx context.Context, idx int, e *entry, body io.Reader) error {
	if err := ctx.Err(); err != nil {
		return err // no new request after a failure or a cancellation
	}
	// The rollback covers every key a Put was started for, in case one
	// fails in a way that leaves its outcome unknown.
	x.mu.Lock()
	x.attempted = append(x.attempted, e.key)
	x.mu.Unlock()
	rctx, cancel := withGrace(ctx, x.opts.RequestGrace)
	defer cancel()
	obj, err := x.sink.Put(rctx, e.key, body, e.usize, e.crc)
	if err != nil {
		return err
	}
	obj.Key, obj.Name, obj.Size, obj.CRC32 = e.key, e.name, e.usize, fmt.Sprintf("%08x", e.crc)
	x.mu.Lock()
	x.objects[idx] = obj
	x.mu.Unlock()
	if p := x.opts.Progress; p != nil {
		p.FilesDone.Add(1)
	}
	x.opts.Logger.Debug("stored", "key", e.key, "bytes", e.usize)
	return nil
}

// withGrace returns a context that is cancelled grace after parent is (or
// when cancel is called), keeping parent's values.
func withGrace(parent context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancelCtx := context.WithCancel(context.WithoutCancel(parent))
	stop := context.AfterFunc(parent, func() { time.AfterFunc(grace, cancelCtx) })
	return ctx, func() { stop(); cancelCtx() }
}

// rollback deletes what this run wrote (every key it started a Put for).
func (x *extractor) rollback(ctx context.Context) {
	x.mu.Lock()
	keys := slices.Clone(x.attempted)
	x.mu.Unlock()
	_ = Rollback(ctx, x.sink, keys, x.opts)
}

// Rollback deletes keys from sink the way [Run] cleans up after a failure:
// with a fresh context bounded by opts.RollbackTimeout, so that it also
// works after a cancellation (SIGTERM), and logging the outcome to
// opts.Logger (an error there means objects remain). Callers that write
// more objects after a successful Run use it to undo the whole run when
// that later step fails.
func Rollback(ctx context.Context, sink Sink, keys []string, opts Options) error {
	if len(keys) == 0 {
		return nil
	}
	opts.setDefaults()
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opts.RollbackTimeout)
	defer cancel()
	if err := sink.Delete(rctx, keys); err != nil {
		opts.Logger.Error("rollback failed: objects of this failed run remain", "objects", len(keys), "error", err.Error())
		return fmt.Errorf("extract: roll back %d objects: %w", len(keys), err)
	}
	opts.Logger.Warn("rolled back: deleted the objects this failed run had written", "objects", len(keys))
	return nil
}
