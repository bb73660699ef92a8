// Package reconcile makes the packages in S3 agree with Benchling again: it
// lists the entries modified in a window, compares each with its package's
// entry.json, and starts one packaging execution (statemachine/packaging.asl.json)
// per entry whose package is missing or older than the entry. It is what
// job reconcile runs, daily and on `copilot job run`, to catch webhooks
// that never arrived.
//
// # The window
//
// A run lists the entries modified after "since":
//
//   - [Config.Since], when the caller gives it (job reconcile --since);
//   - else the lastSuccess of the state object, minus [Config.Overlap];
//   - else, on the first run, now minus [Config.Window].
//
// The state object, <prefix>/.reconcile/state.json, is written only by a
// run that finished without a failure, without an interruption, without
// leaving stale entries unstarted (--max-start), not as a dry run, and
// whose window reaches back at least as far as the state's: its
// lastSuccess is the time that run started. The overlap covers entries
// that were being modified while the previous run listed, and clock skew
// between Benchling and the task: an entry listed twice costs one S3 GET.
//
// # Once per version
//
// Each execution is named after the entry id and its modifiedAt
// ([ExecutionName]); Step Functions refuses a second execution of a name
// it has seen (ExecutionAlreadyExists), so a rerun, or two runs at once,
// never package the same version twice: such entries count as skipped.
package reconcile

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"iter"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"benchling-webhook/internal/benchling"
	"benchling-webhook/internal/exitcode"
	"benchling-webhook/internal/extract"
	"benchling-webhook/internal/render"
	"benchling-webhook/internal/store"
)

// Defaults for the zero values of [Config].
const (
	// DefaultWindow is the first run's window: 30 days.
	DefaultWindow = 30 * 24 * time.Hour
	// DefaultOverlap is how far before the last successful run's start the
	// next window begins.
	DefaultOverlap = 5 * time.Minute
	// DefaultMaxStart caps the executions one run starts, so that a first
	// run on a large tenant cannot start thousands of exports at once.
	DefaultMaxStart = 500
	// DefaultConcurrency is the number of entries checked (one S3 GET) and
	// started (one StartExecution) at once.
	DefaultConcurrency = 4
	// DefaultMaxFailures is how many failed entries end the run early: by
	// then S3 or Step Functions is down, and going on only takes time.
	DefaultMaxFailures = 20
	// DefaultStartTimeout bounds a StartExecution (the SDK's retries
	// included); an interruption lets the ones in flight finish within it,
	// inside ECS's 30 s between SIGTERM and SIGKILL.
	DefaultStartTimeout = 20 * time.Second
)

const (
	entryName     = "entry.json"
	maxEntryJSON  = 32 << 20 // as job export's --readme
	maxStateBytes = 1 << 20
)

// StateKey returns the key of the state object below prefix.
func StateKey(prefix string) string { return prefix + "/.reconcile/state.json" }

// State is the state object: what the last successful run did.
type State struct {
	// LastSuccess is when the last run that finished without failures
	// started; the next window begins at LastSuccess minus the overlap.
	LastSuccess time.Time `json:"lastSuccess"`
	// WindowStart is where that run's window began.
	WindowStart time.Time `json:"windowStart"`
	// EntriesSeen and Started are that run's counts, for people.
	EntriesSeen int `json:"entriesSeen"`
	Started     int `json:"started"`
}

// Lister lists Benchling entries ([benchling.Client]).
type Lister interface {
	ListEntries(ctx context.Context, opts benchling.ListOptions) iter.Seq2[benchling.Entry, error]
}

// Store reads the packages' entry.json and reads and writes the state
// object ([store.S3]). Get returns an error wrapping [store.ErrNotFound]
// for a missing key; errors with exit code 2 (no such bucket, access
// denied) stop the run.
type Store interface {
	Get(ctx context.Context, key string, max int64) ([]byte, error)
	Put(ctx context.Context, key string, body io.Reader, size int64, crc uint32) (extract.Object, error)
}

var (
	_ Lister = (*benchling.Client)(nil)
	_ Store  = (*store.S3)(nil)
)

// Config configures [Run]. Lister, Store, Packager (unless DryRun) and
// Prefix are required; the zero value of every other field means its
// default.
type Config struct {
	// Lister lists the entries.
	Lister Lister
	// Store holds the packages and the state object.
	Store Store
	// Packager starts the executions; with DryRun only its naming is used.
	Packager *Packager
	// Prefix is the package name prefix: entry e's package is
	// <Prefix>/<e>/, the state object <Prefix>/.reconcile/state.json.
	Prefix string
	// Since, if set, is where the window begins, instead of the state's.
	Since time.Time
	// Window is the first run's window. Default [DefaultWindow].
	Window time.Duration
	// Overlap is subtracted from the state's lastSuccess. Default
	// [DefaultOverlap].
	Overlap time.Duration
	// MaxStart caps the executions started. Default [DefaultMaxStart].
	MaxStart int
	// Concurrency is the number of entries handled at once. Default
	// [DefaultConcurrency].
	Concurrency int
	// MaxFailures ends the run after that many failed entries. Default
	// [DefaultMaxFailures].
	MaxFailures int
	// StartTimeout bounds one StartExecution. Default [DefaultStartTimeout].
	StartTimeout time.Duration
	// PageSize is the entries list's page size (0: the client's default).
	PageSize int
	// DryRun starts nothing and records nothing: Report gets each entry it
	// would start.
	DryRun bool
	// Report, if set, gets every stale entry's outcome, one call at a time.
	Report func(Action)
	// Logger gets the diagnostics; nil discards them.
	Logger *slog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Outcomes of an [Action].
const (
	OutcomeStarted        = "started"
	OutcomeAlreadyStarted = "already-started"
	OutcomeWouldStart     = "would-start"
	OutcomeDeferred       = "deferred" // over MaxStart: the next run starts it
	OutcomeFailed         = "failed"
)

// Reasons an entry is stale.
const (
	ReasonMissing = "missing" // no entry.json
	ReasonOlder   = "older"   // entry.json's modifiedAt is older than the entry's
	ReasonCorrupt = "corrupt" // entry.json does not decode, names another entry, or is too large
)

// Action is what happened to one stale entry.
type Action struct {
	Entity     string    `json:"entity"`
	ModifiedAt time.Time `json:"modifiedAt"`
	Reason     string    `json:"reason"`
	Outcome    string    `json:"outcome"`
	Execution  string    `json:"execution"`
	ARN        string    `json:"executionArn,omitempty"`
	Error      string    `json:"error,omitempty"`
}

// Summary is what a run did.
type Summary struct {
	// Since is where the window began, and SinceFrom where that came from:
	// "flag", "state" or "default".
	Since     time.Time
	SinceFrom string
	// EntriesSeen counts the entries listed.
	EntriesSeen int
	// Stale counts the entries whose package is missing or older.
	Stale int
	// Started counts the executions started (0 in a dry run).
	Started int
	// WouldStart counts what a dry run would have started.
	WouldStart int
	// UpToDate counts the entries whose package is current, and
	// AlreadyStarted the stale ones whose execution already existed; both
	// are skipped (Skipped).
	UpToDate, AlreadyStarted int
	// Deferred counts the stale entries left for the next run by MaxStart.
	Deferred int
	// Failed counts the entries whose check or start failed.
	Failed int
	// StateRecorded says whether the state object was written.
	StateRecorded bool
}

// Skipped is UpToDate plus AlreadyStarted.
func (s Summary) Skipped() int { return s.UpToDate + s.AlreadyStarted }

func (c Config) withDefaults() (Config, error) {
	var errs []error
	if c.Lister == nil || c.Store == nil {
		errs = append(errs, errors.New("a lister and a store are required"))
	}
	if c.Packager == nil {
		errs = append(errs, errors.New("a packager is required"))
	} else if !c.DryRun && c.Packager.Client == nil {
		errs = append(errs, errors.New("the packager has no Step Functions client"))
	}
	if p, err := extract.CheckPrefix(c.Prefix, false); err != nil {
		errs = append(errs, err)
	} else {
		c.Prefix = p
	}
	if c.Window < 0 || c.Overlap < 0 || c.MaxStart < 0 || c.Concurrency < 0 || c.MaxFailures < 0 || c.StartTimeout < 0 {
		errs = append(errs, errors.New("window, overlap and limits must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return c, exitcode.Wrap(fmt.Errorf("reconcile: invalid configuration: %w", err), exitcode.Usage)
	}
	if c.Window == 0 {
		c.Window = DefaultWindow
	}
	if c.Overlap == 0 {
		c.Overlap = DefaultOverlap
	}
	if c.MaxStart == 0 {
		c.MaxStart = DefaultMaxStart
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.MaxFailures == 0 {
		c.MaxFailures = DefaultMaxFailures
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = DefaultStartTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Report == nil {
		c.Report = func(Action) {}
	}
	return c, nil
}

// run is one reconcile in progress.
type run struct {
	cfg Config

	mu       sync.Mutex // guards sum, inflight, firstErr and Report calls
	sum      Summary
	inflight int        // StartExecution calls in flight
	settled  *sync.Cond // signalled when one of them returns
	firstErr error
}

// Run reconciles once and returns what it did. The error carries the exit
// code: 2 for configuration (an S3 or Step Functions answer such as
// NoSuchBucket or AccessDenied, credentials Benchling refuses), 4 when
// Benchling, S3 or Step Functions stayed unreachable after the retries or
// some entries failed, 1 for a bug. When ctx ends (SIGTERM) it stops
// listing, lets the StartExecution calls in flight finish, records
// nothing, and returns the context's cause.
func Run(ctx context.Context, cfg Config) (Summary, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return Summary{}, err
	}
	r := &run{cfg: cfg}
	r.settled = sync.NewCond(&r.mu)
	start := cfg.Now()
	log := cfg.Logger

	st, found, err := readState(ctx, cfg)
	if err != nil {
		return r.sum, err
	}
	stateSince, from := start.Add(-cfg.Window), "default"
	if found {
		stateSince, from = st.LastSuccess.Add(-cfg.Overlap), "state"
	}
	since := stateSince
	if !cfg.Since.IsZero() {
		since, from = cfg.Since, "flag"
	}
	r.sum.Since, r.sum.SinceFrom = since.UTC(), from
	log.Info("reconcile starting", "since", since.UTC().Format(time.RFC3339), "sinceFrom", from,
		"prefix", cfg.Prefix, "dryRun", cfg.DryRun, "maxStart", cfg.MaxStart)

	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(cfg.Concurrency)
	var listErr error
	for e, err := range cfg.Lister.ListEntries(gctx, benchling.ListOptions{ModifiedAfter: since, PageSize: cfg.PageSize}) {
		if err != nil {
			listErr = err
			break
		}
		if gctx.Err() != nil {
			break
		}
		r.mu.Lock()
		r.sum.EntriesSeen++
		r.mu.Unlock()
		g.Go(func() error { return r.entry(gctx, e) })
	}
	workErr := g.Wait()
	sum := r.summary()

	switch {
	case ctx.Err() != nil:
		log.Warn("reconcile interrupted: the state is not recorded", "cause", context.Cause(ctx).Error())
		return sum, fmt.Errorf("reconcile: %w", context.Cause(ctx))
	case workErr != nil:
		return sum, workErr
	case listErr != nil:
		// A 4xx other than 401/403 on the list is a request this program
		// should not have sent: a bug (1), not bad input (3).
		if exitcode.Resolve(listErr) == exitcode.BadInput {
			listErr = exitcode.Wrap(listErr, exitcode.Internal)
		}
		return sum, fmt.Errorf("reconcile: %w", listErr)
	case sum.Failed > 0:
		return sum, exitcode.Wrap(fmt.Errorf("reconcile: %d entries failed, the state is not recorded; the first: %w", sum.Failed, r.firstErr), exitcode.Transient)
	}

	switch {
	case cfg.DryRun:
	case sum.Deferred > 0:
		log.Warn("more stale entries than --max-start: the next run starts the rest; the state is not recorded", "deferred", sum.Deferred)
	case since.After(stateSince):
		log.Info("the window starts after the recorded one: the state is not recorded", "recordedSince", stateSince.UTC().Format(time.RFC3339))
	default:
		next := State{LastSuccess: start.UTC(), WindowStart: since.UTC(), EntriesSeen: sum.EntriesSeen, Started: sum.Started}
		if err := writeState(ctx, cfg, next); err != nil {
			return sum, err
		}
		sum.StateRecorded = true
		log.Info("state recorded", "key", StateKey(cfg.Prefix), "lastSuccess", next.LastSuccess.Format(time.RFC3339))
	}
	return sum, nil
}

func (r *run) summary() Summary {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sum
}

// entry checks one entry and starts its packaging if it is stale. It
// returns an error only to stop the whole run.
func (r *run) entry(ctx context.Context, e benchling.Entry) error {
	if ctx.Err() != nil {
		return nil
	}
	log := r.cfg.Logger
	if !ValidEntity(e.ID) {
		return exitcode.Wrap(fmt.Errorf("reconcile: Benchling listed an entry with the id %q", e.ID), exitcode.Internal)
	}
	reason, err := r.check(ctx, e)
	if err != nil {
		return r.failed(ctx, e, Action{Entity: e.ID, ModifiedAt: e.ModifiedAt}, err)
	}
	if reason == "" {
		log.Debug("package up to date", "entity", e.ID, "modifiedAt", e.ModifiedAt)
		r.mu.Lock()
		r.sum.UpToDate++
		r.mu.Unlock()
		return nil
	}
	a := Action{Entity: e.ID, ModifiedAt: e.ModifiedAt, Reason: reason, Execution: ExecutionName(e.ID, e.ModifiedAt, "")}
	r.mu.Lock()
	r.sum.Stale++
	// MaxStart counts new executions. A call in flight may turn out to be
	// an execution that already existed, so while the calls in flight
	// could reach the cap, wait for them to settle before deciding.
	for r.sum.Started+r.sum.WouldStart+r.inflight >= r.cfg.MaxStart && r.inflight > 0 {
		r.settled.Wait()
	}
	if r.sum.Started+r.sum.WouldStart >= r.cfg.MaxStart {
		r.sum.Deferred++
		a.Outcome = OutcomeDeferred
		r.cfg.Report(a)
		r.mu.Unlock()
		return nil
	}
	if r.cfg.DryRun {
		r.sum.WouldStart++
		a.Outcome = OutcomeWouldStart
		r.cfg.Report(a)
		r.mu.Unlock()
		log.Info("would start packaging", "entity", e.ID, "modifiedAt", e.ModifiedAt, "reason", reason, "execution", a.Execution)
		return nil
	}
	if ctx.Err() != nil { // interrupted while it waited: start nothing new
		r.mu.Unlock()
		return nil
	}
	r.inflight++
	r.mu.Unlock()

	// A call once made is let finish when the run is interrupted: an
	// execution is started or it is not, never unknown.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.StartTimeout)
	defer cancel()
	s, err := r.cfg.Packager.Start(sctx, Target{Entity: e.ID, ModifiedAt: e.ModifiedAt, MessageType: MessageReconcile})
	if err != nil {
		r.mu.Lock()
		r.inflight--
		r.settled.Broadcast()
		r.mu.Unlock()
		return r.failed(ctx, e, a, err)
	}
	a.ARN = s.ARN
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inflight-- // counted in the same critical section, for the cap
	r.settled.Broadcast()
	if s.AlreadyStarted {
		r.sum.AlreadyStarted++
		a.Outcome = OutcomeAlreadyStarted
		r.cfg.Report(a)
		log.Info("packaging already started", "entity", e.ID, "modifiedAt", e.ModifiedAt, "executionArn", s.ARN)
		return nil
	}
	r.sum.Started++
	a.Outcome = OutcomeStarted
	r.cfg.Report(a)
	log.Info("packaging started", "entity", e.ID, "modifiedAt", e.ModifiedAt, "reason", reason, "executionArn", s.ARN)
	return nil
}

// failed handles an entry's error: an interruption is nobody's failure;
// a transient error counts (and ends the run after MaxFailures); any other
// code ends the run, as it would fail every entry.
func (r *run) failed(ctx context.Context, e benchling.Entry, a Action, err error) error {
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return nil
	}
	if exitcode.Resolve(err) != exitcode.Transient {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sum.Failed++
	if r.firstErr == nil {
		r.firstErr = err
	}
	a.Outcome, a.Error = OutcomeFailed, err.Error()
	r.cfg.Report(a)
	r.cfg.Logger.Warn("entry failed", "entity", e.ID, "modifiedAt", e.ModifiedAt, "error", err.Error())
	if r.sum.Failed >= r.cfg.MaxFailures {
		return exitcode.Wrap(fmt.Errorf("reconcile: %d entries failed, stopping early; the last: %w", r.sum.Failed, err), exitcode.Transient)
	}
	return nil
}

// check returns why e's package is stale, or "" when it is up to date.
func (r *run) check(ctx context.Context, e benchling.Entry) (string, error) {
	key := r.cfg.Prefix + "/" + e.ID + "/" + entryName
	data, err := r.cfg.Store.Get(ctx, key, maxEntryJSON)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return ReasonMissing, nil
	case errors.Is(err, store.ErrTooLarge):
		r.cfg.Logger.Warn("entry.json is too large; packaging again", "entity", e.ID, "key", key)
		return ReasonCorrupt, nil
	case err != nil:
		return "", fmt.Errorf("reconcile: read %s: %w", key, err)
	}
	packaged, err := render.DecodeEntry(data)
	if err != nil || packaged.ID != e.ID {
		r.cfg.Logger.Warn("entry.json is not this entry's; packaging again", "entity", e.ID, "key", key)
		return ReasonCorrupt, nil
	}
	at, err := time.Parse(time.RFC3339Nano, packaged.ModifiedAt)
	if err != nil {
		r.cfg.Logger.Warn("entry.json has no valid modifiedAt; packaging again", "entity", e.ID, "key", key)
		return ReasonCorrupt, nil
	}
	if at.Before(e.ModifiedAt) {
		return ReasonOlder, nil
	}
	return "", nil
}

// readState reads the state object. A missing one is found=false; one that
// does not decode is logged and ignored (the default window applies); any
// other error ends the run before it lists anything.
func readState(ctx context.Context, cfg Config) (State, bool, error) {
	key := StateKey(cfg.Prefix)
	data, err := cfg.Store.Get(ctx, key, maxStateBytes)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return State{}, false, nil
	case err != nil && exitcode.Resolve(err) == exitcode.BadInput: // too large
		cfg.Logger.Warn("the state object is not valid; using the default window", "key", key, "error", err.Error())
		return State{}, false, nil
	case err != nil:
		return State{}, false, fmt.Errorf("reconcile: read state: %w", err)
	}
	var st State
	if err := json.Unmarshal(data, &st); err != nil || st.LastSuccess.IsZero() {
		cfg.Logger.Warn("the state object is not valid; using the default window", "key", key)
		return State{}, false, nil
	}
	return st, true, nil
}

// ReadState reads the state object below prefix from s: found is false
// when there is none (or it does not decode).
func ReadState(ctx context.Context, s Store, prefix string) (State, bool, error) {
	return readState(ctx, Config{Store: s, Prefix: prefix, Logger: slog.New(slog.DiscardHandler)})
}

func writeState(ctx context.Context, cfg Config, st State) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("reconcile: encode state: %w", err)
	}
	b = append(b, '\n')
	if _, err := cfg.Store.Put(ctx, StateKey(cfg.Prefix), bytes.NewReader(b), int64(len(b)), crc32.ChecksumIEEE(b)); err != nil {
		return fmt.Errorf("reconcile: write state: %w", err)
	}
	return nil
}
