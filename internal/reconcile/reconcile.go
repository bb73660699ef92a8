// Package reconcile makes the packages in S3 agree with Benchling again
// (job reconcile): it starts one packaging execution per entry whose
// package is missing, older or incomplete (its record says what a complete
// one holds), and aborts old multipart uploads. See docs/operations.md
// ("Reconcile") and docs/architecture.md ("Reconcile: how a run decides").
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
	"benchling-webhook/internal/quiltpkg"
	"benchling-webhook/internal/store"
)

// Defaults for the zero values of [Config].
const (
	// DefaultWindow is the first run's window: 30 days.
	DefaultWindow = 30 * 24 * time.Hour
	// DefaultOverlap is how far before the last successful run's start the
	// next window begins.
	DefaultOverlap = 5 * time.Minute
	// DefaultMaxStart caps the executions one run starts (restarts
	// included), so that a first run on a large tenant cannot start
	// thousands of exports at once.
	DefaultMaxStart = 50
	// DefaultStartInterval is the least time between two StartExecution
	// calls: a run of DefaultMaxStart executions takes at least 100 s to
	// start them, and their Benchling calls are spread as much.
	DefaultStartInterval = 2 * time.Second
	// DefaultConcurrency is the number of entries checked (a GET of the
	// record and one listing of the package, a page per 1,000 files) and
	// started (a StartExecution, more for a taken name) at once.
	DefaultConcurrency = 4
	// DefaultMaxFailures is how many failed entries end the run early: by
	// then S3 or Step Functions is down, and going on only takes time.
	DefaultMaxFailures = 20
	// DefaultStartTimeout bounds one StartExecution or DescribeExecution
	// call (the SDK's retries included); an interruption lets the ones in
	// flight finish within it, inside ECS's 30 s between SIGTERM and
	// SIGKILL.
	DefaultStartTimeout = 20 * time.Second
	// DefaultInProgressTimeout is how long a record in progress may be an
	// export still under way when Step Functions cannot say: the packaging
	// machine's TimeoutSeconds (statemachine/packaging.asl.json).
	DefaultInProgressTimeout = 4 * time.Hour
	// DefaultAbortUploadsAfter is the age past which a multipart upload
	// below the prefix is aborted: a day, far more than an export runs.
	DefaultAbortUploadsAfter = 24 * time.Hour
)

const maxStateBytes = 1 << 20

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
	Restarted   int `json:"restarted,omitempty"`
}

// Lister lists Benchling entries ([benchling.Client]).
type Lister interface {
	ListEntries(ctx context.Context, opts benchling.ListOptions) iter.Seq2[benchling.Entry, error]
}

// Store reads the packages' records and entry.json, lists what a package
// holds, reads and writes the state object, and lists and aborts old
// multipart uploads ([store.S3], with [store.S3Options.ListWhenDenied]).
// Get returns an error wrapping [store.ErrNotFound] for a missing key;
// errors with exit code 2 (no such bucket, access denied) stop the run.
type Store interface {
	Get(ctx context.Context, key string, max int64) ([]byte, error)
	Put(ctx context.Context, key string, body io.Reader, size int64, crc uint32) (extract.Object, error)
	// List returns every object below prefix with its ETag and size.
	List(ctx context.Context, prefix string) ([]store.ObjectInfo, error)
	// ListUploads returns the multipart uploads in progress below prefix.
	ListUploads(ctx context.Context, prefix string) ([]store.Upload, error)
	// AbortUpload aborts one; one already gone is not an error.
	AbortUpload(ctx context.Context, key, uploadID string) error
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
	// MaxStart caps the executions started, restarts included. Default
	// [DefaultMaxStart].
	MaxStart int
	// StartInterval is the least time between two StartExecution calls
	// (see [Pacer]); it replaces the Packager's Pacer for the run. Default
	// [DefaultStartInterval]; negative: no pacing at all.
	StartInterval time.Duration
	// Concurrency is the number of entries handled at once. Default
	// [DefaultConcurrency].
	Concurrency int
	// MaxFailures ends the run after that many failed entries. Default
	// [DefaultMaxFailures].
	MaxFailures int
	// StartTimeout bounds one StartExecution or DescribeExecution call,
	// which an interruption lets finish. Default [DefaultStartTimeout].
	StartTimeout time.Duration
	// PageSize is the entries list's page size (0: the client's default).
	PageSize int
	// InProgressTimeout is how long a record in progress whose run Step
	// Functions cannot describe is taken for an export under way. Default
	// [DefaultInProgressTimeout].
	InProgressTimeout time.Duration
	// AbortUploadsAfter is the age past which multipart uploads below
	// the prefix are aborted. Default [DefaultAbortUploadsAfter];
	// negative: none is aborted.
	AbortUploadsAfter time.Duration
	// DryRun starts nothing and records nothing: Report gets each entry it
	// would start.
	DryRun bool
	// Report, if set, gets every stale entry's outcome, one call at a time.
	Report func(Action)
	// Logger gets the diagnostics; nil discards them.
	Logger *slog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time

	// after replaces time.After in the pacer (tests).
	after func(time.Duration) <-chan time.Time
}

// Outcomes of an [Action].
const (
	OutcomeStarted        = "started"
	OutcomeRestarted      = "restarted" // started again as NAME-rN: the earlier execution left no package
	OutcomeAlreadyStarted = "already-started"
	OutcomeWouldStart     = "would-start"
	OutcomeDeferred       = "deferred" // over MaxStart: the next run starts it
	OutcomeFailed         = "failed"
	OutcomeGaveUp         = "gave-up" // MaxRestarts restarts left no package either: not started again
	// OutcomeBeingPackaged: the record is in progress and its export is
	// still running; not started again (see [run.checkInProgress]).
	OutcomeBeingPackaged = "being-packaged"
)

// Reasons an entry is stale.
const (
	ReasonMissing    = "missing"    // no record and no entry.json
	ReasonOlder      = "older"      // the packaged version (the record's, or entry.json's) is older than the entry
	ReasonCorrupt    = "corrupt"    // the record or entry.json does not decode, is another's, or is too large
	ReasonIncomplete = "incomplete" // current, but a recorded file is missing or changed, the record is in progress, or there is none
)

// Action is what happened to one stale entry.
type Action struct {
	Entity     string    `json:"entity"`
	ModifiedAt time.Time `json:"modifiedAt"`
	Reason     string    `json:"reason"`
	// Detail says what the reason is about: "missing 3 files (…) of the
	// 12 recorded", "export in progress since …".
	Detail  string `json:"detail,omitempty"`
	Outcome string `json:"outcome"`
	// Execution is the execution's name: the one started, or running.
	Execution string `json:"execution"`
	ARN       string `json:"executionArn,omitempty"`
	// PreviousStatus is the status of the version's earlier execution,
	// when its name was taken.
	PreviousStatus string `json:"previousStatus,omitempty"`
	Error          string `json:"error,omitempty"`
}

// Summary is what a run did.
type Summary struct {
	// Since is where the window began, and SinceFrom where that came from:
	// "flag", "state" or "default".
	Since     time.Time
	SinceFrom string
	// EntriesSeen counts the entries listed.
	EntriesSeen int
	// Stale counts the entries whose package is missing, older or
	// incomplete.
	Stale int
	// Started counts the executions started under the version's own name
	// (0 in a dry run).
	Started int
	// Restarted counts the executions started again, as NAME-rN, for a
	// version whose earlier execution ended without a package.
	Restarted int
	// WouldStart counts what a dry run would have started.
	WouldStart int
	// UpToDate counts the entries whose package is current, and
	// AlreadyStarted the stale ones with an execution still running (the
	// version's, or its latest restart's, or the one writing the package:
	// [OutcomeBeingPackaged]); both are skipped (Skipped).
	UpToDate, AlreadyStarted int
	// Deferred counts the stale entries left for the next run by MaxStart.
	Deferred int
	// Failed counts the entries whose check or start failed.
	Failed int
	// GaveUp counts the stale entries not started again because the
	// version's execution and its MaxRestarts restarts all ended without
	// a package ([ErrRestartLimit]); they do not fail the run.
	GaveUp int
	// InvalidIDs counts the entries Benchling listed whose id is not an
	// entry id ([quiltpkg.ValidEntryID]): skipped, and the run ends with
	// exit 3 naming the first, FirstInvalidID.
	InvalidIDs     int
	FirstInvalidID string
	// OldUploads counts the multipart uploads below the prefix older than
	// AbortUploadsAfter, and UploadsAborted those aborted (none in a dry
	// run).
	OldUploads, UploadsAborted int
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
	if p, err := quiltpkg.CheckPrefix(c.Prefix, false); err != nil {
		errs = append(errs, err)
	} else if p != c.Prefix {
		errs = append(errs, fmt.Errorf("the prefix %q is not as quiltpkg.CheckPrefix returns it (%q)", c.Prefix, p))
	}
	if c.Window < 0 || c.Overlap < 0 || c.MaxStart < 0 || c.Concurrency < 0 || c.MaxFailures < 0 || c.StartTimeout < 0 || c.InProgressTimeout < 0 {
		errs = append(errs, errors.New("window, overlap, limits and timeouts must not be negative"))
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
	if c.StartInterval == 0 {
		c.StartInterval = DefaultStartInterval
	}
	if c.InProgressTimeout == 0 {
		c.InProgressTimeout = DefaultInProgressTimeout
	}
	if c.AbortUploadsAfter == 0 {
		c.AbortUploadsAfter = DefaultAbortUploadsAfter
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
	// The run's own copy of the packager: its calls outlive an
	// interruption by StartTimeout at most, and are paced.
	p := *c.Packager
	p.CallTimeout = c.StartTimeout
	p.Pacer = nil
	if c.StartInterval > 0 {
		p.Pacer = &Pacer{Interval: c.StartInterval, Now: c.Now, After: c.after}
	}
	c.Packager = &p
	return c, nil
}

// run is one reconcile in progress.
type run struct {
	cfg Config

	mu       sync.Mutex // guards sum, inflight, firstErr and Report calls: see run.record
	sum      Summary    // all but EntriesSeen, which Run counts
	inflight int        // start slots handed out (run.admit), not yet given back
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
		"prefix", cfg.Prefix, "dryRun", cfg.DryRun, "maxStart", cfg.MaxStart, "startInterval", max(cfg.StartInterval, 0).String())

	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(cfg.Concurrency)
	var listErr error
	seen := 0
	for e, err := range cfg.Lister.ListEntries(gctx, benchling.ListOptions{ModifiedAfter: since, PageSize: cfg.PageSize}) {
		if err != nil {
			listErr = err
			break
		}
		if gctx.Err() != nil {
			break
		}
		seen++
		g.Go(func() error { return r.entry(gctx, e) })
	}
	workErr := g.Wait()
	var uploadsErr error
	if ctx.Err() == nil && workErr == nil {
		uploadsErr = r.abortUploads(ctx, start)
	}
	sum := r.summary()
	sum.EntriesSeen = seen

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
	case uploadsErr != nil:
		if ctx.Err() != nil {
			return sum, fmt.Errorf("reconcile: %w", context.Cause(ctx))
		}
		return sum, fmt.Errorf("%w; the state is not recorded", uploadsErr)
	}

	switch {
	case cfg.DryRun:
	case sum.Deferred > 0:
		log.Warn("more stale entries than --max-start: the next run starts the rest; the state is not recorded", "deferred", sum.Deferred)
	case since.After(stateSince):
		log.Info("the window starts after the recorded one: the state is not recorded", "recordedSince", stateSince.UTC().Format(time.RFC3339))
	default:
		next := State{LastSuccess: start.UTC(), WindowStart: since.UTC(), EntriesSeen: sum.EntriesSeen, Started: sum.Started, Restarted: sum.Restarted}
		if err := writeState(ctx, cfg, next); err != nil {
			return sum, err
		}
		sum.StateRecorded = true
		log.Info("state recorded", "key", quiltpkg.StateKey(cfg.Prefix), "lastSuccess", next.LastSuccess.Format(time.RFC3339))
	}
	if sum.InvalidIDs > 0 {
		// Every other entry was handled: one odd id must not hold the
		// window back forever, but it is reported (exit 3).
		return sum, exitcode.Wrap(fmt.Errorf("reconcile: Benchling listed %d entries whose id is not an entry id, skipped; the first: %q",
			sum.InvalidIDs, sum.FirstInvalidID), exitcode.BadInput)
	}
	return sum, nil
}

func (r *run) summary() Summary {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sum
}

// step is what one entry came to: [run.entry] works it out outside the
// lock, and [run.record] counts and reports it, under the lock, in one
// place.
type step struct {
	// action is the entry's line; an Outcome of "" reports nothing.
	action Action
	// upToDate: the package is current.
	upToDate bool
	// stale: the package is missing, older or incomplete.
	stale bool
	// admitted: the entry held one of the start slots [run.admit] hands
	// out, which [run.record] gives back.
	admitted bool
	// err: the check or the start failed (see [run.record]).
	err error
}

// entry checks one entry and starts its packaging if it is stale. It
// returns an error only to stop the whole run.
func (r *run) entry(ctx context.Context, e benchling.Entry) error {
	if ctx.Err() != nil {
		return nil
	}
	if !quiltpkg.ValidEntryID(e.ID) {
		// Before any S3 read or start: the id goes into keys and names.
		r.cfg.Logger.Error("Benchling listed an entry whose id is not an entry id; skipped", "entity", e.ID)
		r.mu.Lock()
		if r.sum.InvalidIDs++; r.sum.FirstInvalidID == "" {
			r.sum.FirstInvalidID = e.ID
		}
		r.mu.Unlock()
		return nil
	}
	st := step{action: Action{Entity: e.ID, ModifiedAt: e.ModifiedAt}}
	v, err := r.check(ctx, e)
	switch {
	case err != nil:
		st.err = err
		return r.record(ctx, st)
	case v.reason == "":
		st.upToDate = true
		return r.record(ctx, st)
	}
	st.stale = true
	st.action.Reason, st.action.Detail, st.action.Execution = v.reason, v.detail, ExecutionName(e.ID, e.ModifiedAt, "")
	if v.running != "" {
		st.action.Outcome, st.action.Execution = OutcomeBeingPackaged, v.running
		return r.record(ctx, st)
	}
	switch r.admit(ctx) {
	case admitDeferred:
		st.action.Outcome = OutcomeDeferred
		return r.record(ctx, st)
	case admitInterrupted: // while it waited: start nothing new
		return r.record(ctx, st)
	}
	st.admitted = true
	if r.cfg.DryRun {
		st.action.Outcome = OutcomeWouldStart
		return r.record(ctx, st)
	}
	// The packager lets a call once made finish when the run is
	// interrupted (an execution is started or it is not, never unknown),
	// and makes no further call.
	s, err := r.cfg.Packager.Start(ctx, Target{Entity: e.ID, ModifiedAt: e.ModifiedAt, MessageType: MessageReconcile, RestartSucceeded: true})
	if s.Name != "" {
		st.action.Execution = s.Name
	}
	st.action.ARN, st.action.PreviousStatus = s.ARN, s.PreviousStatus
	switch {
	case errors.Is(err, ErrRestartLimit):
		st.action.Outcome, st.action.Error = OutcomeGaveUp, err.Error()
	case err != nil:
		st.action.ARN, st.err = "", err
	case s.AlreadyStarted:
		st.action.Outcome = OutcomeAlreadyStarted
	case s.Restarted:
		st.action.Outcome = OutcomeRestarted
	default:
		st.action.Outcome = OutcomeStarted
	}
	return r.record(ctx, st)
}

// Answers of [run.admit].
const (
	admitted = iota
	admitDeferred
	admitInterrupted
)

// admit hands out one of the start slots that [Config.MaxStart] caps.
// MaxStart counts new executions, and a call in flight may turn out to
// be an execution that already existed, so while the slots in flight
// could reach the cap, it waits for them to be given back ([run.record])
// before deciding.
func (r *run) admit(ctx context.Context) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.startedLocked()+r.inflight >= r.cfg.MaxStart && r.inflight > 0 {
		r.settled.Wait()
	}
	switch {
	case r.startedLocked() >= r.cfg.MaxStart:
		return admitDeferred
	case ctx.Err() != nil:
		return admitInterrupted
	}
	r.inflight++
	return admitted
}

// startedLocked is the number of executions the run started, or would
// have in a dry run: what MaxStart caps. r.mu must be held.
func (r *run) startedLocked() int { return r.sum.Started + r.sum.Restarted + r.sum.WouldStart }

// record counts st, gives back its start slot and reports its action,
// under the lock, then logs it. A failure (st.err) is handled so: an
// interruption is nobody's failure; a transient error counts (and ends
// the run after MaxFailures); any other code ends the run, as it would
// fail every entry. The error returned stops the run.
func (r *run) record(ctx context.Context, st step) error {
	var stop error
	if st.err != nil {
		switch {
		case ctx.Err() != nil && (errors.Is(st.err, context.Canceled) || errors.Is(st.err, context.DeadlineExceeded)):
			st.err = nil
		case exitcode.Resolve(st.err) != exitcode.Transient:
			stop, st.err = st.err, nil
		default:
			st.action.Outcome, st.action.Error = OutcomeFailed, st.err.Error()
		}
	}
	r.mu.Lock()
	if st.admitted {
		r.inflight-- // in the same critical section as the count, for the cap
		r.settled.Broadcast()
	}
	if st.stale {
		r.sum.Stale++
	}
	switch st.action.Outcome {
	case "":
		if st.upToDate {
			r.sum.UpToDate++
		}
	case OutcomeDeferred:
		r.sum.Deferred++
	case OutcomeWouldStart:
		r.sum.WouldStart++
	case OutcomeGaveUp:
		r.sum.GaveUp++
	case OutcomeAlreadyStarted, OutcomeBeingPackaged:
		r.sum.AlreadyStarted++
	case OutcomeRestarted:
		r.sum.Restarted++
	case OutcomeStarted:
		r.sum.Started++
	case OutcomeFailed:
		r.sum.Failed++
		if r.firstErr == nil {
			r.firstErr = st.err
		}
		if r.sum.Failed >= r.cfg.MaxFailures {
			stop = exitcode.Wrap(fmt.Errorf("reconcile: %d entries failed, stopping early; the last: %w", r.sum.Failed, st.err), exitcode.Transient)
		}
	}
	if st.action.Outcome != "" {
		r.cfg.Report(st.action)
	}
	r.mu.Unlock()
	r.log(st)
	return stop
}

// log writes st's line.
func (r *run) log(st step) {
	log, a := r.cfg.Logger, st.action
	switch a.Outcome {
	case "":
		if st.upToDate {
			log.Debug("package up to date", "entity", a.Entity, "modifiedAt", a.ModifiedAt)
		}
	case OutcomeWouldStart:
		log.Info("would start packaging", "entity", a.Entity, "modifiedAt", a.ModifiedAt, "reason", a.Reason, "detail", a.Detail, "execution", a.Execution)
	case OutcomeGaveUp:
		log.Error("packaging given up: the version's execution and its restarts all ended without a package; start it by hand (job package --repackage)",
			"entity", a.Entity, "modifiedAt", a.ModifiedAt, "executionArn", a.ARN, "status", a.PreviousStatus)
	case OutcomeFailed:
		log.Warn("entry failed", "entity", a.Entity, "modifiedAt", a.ModifiedAt, "error", a.Error)
	case OutcomeAlreadyStarted:
		log.Info("packaging already started", "entity", a.Entity, "modifiedAt", a.ModifiedAt, "reason", a.Reason, "detail", a.Detail, "executionArn", a.ARN, "status", a.PreviousStatus)
	case OutcomeBeingPackaged:
		log.Info("being packaged: not started again", "entity", a.Entity, "modifiedAt", a.ModifiedAt, "detail", a.Detail, "execution", a.Execution)
	case OutcomeRestarted:
		log.Info("packaging restarted", "entity", a.Entity, "modifiedAt", a.ModifiedAt, "reason", a.Reason, "detail", a.Detail, "executionArn", a.ARN, "previousStatus", a.PreviousStatus)
	case OutcomeStarted:
		log.Info("packaging started", "entity", a.Entity, "modifiedAt", a.ModifiedAt, "reason", a.Reason, "detail", a.Detail, "executionArn", a.ARN)
	}
}

// readState reads the state object. A missing one is found=false; one that
// does not decode is logged and ignored (the default window applies); any
// other error ends the run before it lists anything.
func readState(ctx context.Context, cfg Config) (State, bool, error) {
	key := quiltpkg.StateKey(cfg.Prefix)
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
	if _, err := cfg.Store.Put(ctx, quiltpkg.StateKey(cfg.Prefix), bytes.NewReader(b), int64(len(b)), crc32.ChecksumIEEE(b)); err != nil {
		return fmt.Errorf("reconcile: write state: %w", err)
	}
	return nil
}
