package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/stretchr/testify/require"

	"benchling-webhook/internal/benchling"
	"benchling-webhook/internal/exitcode"
	"benchling-webhook/internal/quiltpkg"
	"benchling-webhook/internal/testkit/sandbox"
	"benchling-webhook/internal/testkit/sfnfake"
)

// now is the tests' clock: entries are modified in the hours before it.
var now = time.Date(2025, 3, 7, 12, 0, 0, 0, time.UTC)

func ago(d time.Duration) time.Time { return now.Add(-d) }

// addEntries adds the entity → modifiedAt entries to the sandbox.
func (f *fixture) addEntries(entries map[string]time.Time) {
	for id, at := range entries {
		f.bench.AddEntry(id, sandbox.EntryOptions{ModifiedAt: at})
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}

// TestReconcile walks through a tenant's life: a first run, a rerun, a
// run from the recorded state.
func TestReconcile(t *testing.T) {
	f := newFixture(t, sandbox.Options{})
	modified := map[string]time.Time{
		"etr_missing": ago(5 * time.Hour),       // no package: started
		"etr_current": ago(4 * time.Hour),       // entry.json as modified: skipped
		"etr_newer":   ago(3 * time.Hour),       // entry.json newer (a webhook raced us): skipped
		"etr_older":   ago(2 * time.Hour),       // entry.json older: started
		"etr_corrupt": ago(90 * time.Minute),    // entry.json not JSON: started
		"etr_ancient": ago(40 * 24 * time.Hour), // outside the first window: not listed
	}
	f.addEntries(modified)
	f.store.putPackage("etr_current", modified["etr_current"])
	f.store.putPackage("etr_newer", modified["etr_newer"].Add(time.Minute))
	f.store.putEntryJSON("etr_older", modified["etr_older"].Add(-time.Microsecond))
	f.store.put(testPrefix+"/etr_corrupt/entry.json", []byte("{not json"))

	var rec recorder
	cfg := f.config(t, now)
	cfg.Report = rec.report
	sum, err := Run(t.Context(), cfg)
	require.NoError(t, err, f.logs.String())
	require.Equal(t, 5, sum.EntriesSeen)
	require.Equal(t, 3, sum.Stale)
	require.Equal(t, 3, sum.Started)
	require.Equal(t, 2, sum.Skipped())
	require.Zero(t, sum.Failed)
	require.True(t, sum.StateRecorded)
	require.Equal(t, "default", sum.SinceFrom)
	require.Equal(t, now.Add(-DefaultWindow), sum.Since)
	require.Equal(t, []string{"etr_corrupt", "etr_missing", "etr_older"}, sorted(f.started()))
	require.Equal(t, map[string]string{"etr_missing": OutcomeStarted, "etr_older": OutcomeStarted, "etr_corrupt": OutcomeStarted}, rec.outcomes())
	require.Len(t, f.entriesCalls(), 3, "five entries in pages of two")
	noSecrets(t, f.logs.String())

	// The execution: its name and the packaging machine's input.
	var ex sfnfake.Execution
	for _, e := range f.sfn.Executions() {
		if e.Name == "etr_older-20250307T100000000000Z" {
			ex = e
		}
	}
	require.NotEmpty(t, ex.ARN, "named after the entry and its modifiedAt")
	require.Equal(t, testMachine, ex.StateMachineARN)
	require.JSONEq(t, `{"entity":"etr_older","packageName":"benchling/etr_older","registry":"registry","baseURL":"`+f.bench.URL()+`",
		"message":{"type":"reconcile","resourceId":"etr_older","modifiedAt":"2025-03-07T10:00:00Z"},"eventTime":"2025-03-07T10:00:00Z"}`, ex.Input)

	// The state: this run's start.
	b, ok := f.store.get("benchling/.reconcile/state.json")
	require.True(t, ok)
	var st State
	require.NoError(t, json.Unmarshal(b, &st))
	require.Equal(t, now, st.LastSuccess)
	require.Equal(t, now.Add(-DefaultWindow), st.WindowStart)

	// A rerun over the same window (nothing packaged yet, as the
	// executions are still running): every start is refused as already
	// existing, nothing new starts.
	rec = recorder{}
	cfg = f.config(t, now.Add(time.Minute))
	cfg.Since = now.Add(-DefaultWindow)
	cfg.Report = rec.report
	sum, err = Run(t.Context(), cfg)
	require.NoError(t, err)
	require.Equal(t, 3, sum.Stale)
	require.Zero(t, sum.Started)
	require.Equal(t, 3, sum.AlreadyStarted)
	require.Equal(t, 5, sum.Skipped())
	require.Len(t, f.sfn.Executions(), 3, "nothing new")
	require.Equal(t, OutcomeAlreadyStarted, rec.outcomes()["etr_missing"])
	require.Equal(t, "flag", sum.SinceFrom)
	require.True(t, sum.StateRecorded, "a --since window reaching back as far as the state's is recorded")

	// The next run starts where the last one started, minus the overlap:
	// an entry modified since is found, the old ones are not listed.
	f.bench.AddEntry("etr_fresh", sandbox.EntryOptions{ModifiedAt: now.Add(30 * time.Minute)})
	calls := len(f.entriesCalls())
	cfg = f.config(t, now.Add(time.Hour))
	sum, err = Run(t.Context(), cfg)
	require.NoError(t, err)
	require.Equal(t, "state", sum.SinceFrom)
	require.Equal(t, now.Add(time.Minute-DefaultOverlap), sum.Since)
	require.Equal(t, 1, sum.EntriesSeen)
	require.Equal(t, 1, sum.Started)
	require.Equal(t, "> 2025-03-07T11:56:00Z", f.entriesCalls()[calls].Query.Get("modifiedAt"))
}

func TestDryRun(t *testing.T) {
	f := newFixture(t, sandbox.Options{})
	f.addEntries(map[string]time.Time{"etr_a": ago(3 * time.Hour), "etr_b": ago(2 * time.Hour), "etr_c": ago(time.Hour)})
	f.store.putPackage("etr_b", ago(2*time.Hour))
	var rec recorder
	cfg := f.config(t, now)
	cfg.DryRun = true
	cfg.Packager.Client = nil // a dry run needs no Step Functions
	cfg.Report = rec.report
	sum, err := Run(t.Context(), cfg)
	require.NoError(t, err)
	require.Equal(t, 2, sum.Stale)
	require.Equal(t, 2, sum.WouldStart)
	require.Zero(t, sum.Started)
	require.False(t, sum.StateRecorded)
	require.Zero(t, f.sfn.Calls("StartExecution"))
	require.Zero(t, f.store.puts, "nothing recorded")
	require.Equal(t, map[string]string{"etr_a": OutcomeWouldStart, "etr_c": OutcomeWouldStart}, rec.outcomes())
	for _, a := range rec.actions {
		require.Equal(t, ReasonMissing, a.Reason)
		require.Equal(t, ExecutionName(a.Entity, a.ModifiedAt, ""), a.Execution)
	}
}

// TestRateLimited: a 429 from the tenant's limiter is waited out, and the
// run goes on over several pages.
func TestRateLimited(t *testing.T) {
	f := newFixture(t, sandbox.Options{RateLimit: 3, RateWindow: time.Second})
	for i := range 5 {
		f.bench.AddEntry(fmt.Sprintf("etr_r%d", i), sandbox.EntryOptions{ModifiedAt: ago(time.Duration(i+1) * time.Hour)})
	}
	cfg := f.config(t, now)
	sum, err := Run(t.Context(), cfg)
	require.NoError(t, err)
	require.Equal(t, 5, sum.EntriesSeen)
	require.Equal(t, 5, sum.Started)
	limited := 0
	for _, c := range f.bench.Calls() {
		if c.Status == http.StatusTooManyRequests {
			limited++
		}
	}
	require.GreaterOrEqual(t, limited, 1, "the limiter answered 429 at least once")
	require.Contains(t, f.logs.String(), "Rate limit exceeded")
}

func TestStartFailures(t *testing.T) {
	entries := map[string]time.Time{"etr_a": ago(3 * time.Hour), "etr_b": ago(2 * time.Hour), "etr_c": ago(time.Hour)}
	tests := map[string]struct {
		fault   sfnfake.Fault
		code    int
		failed  int
		started int
	}{
		"throttled":     {sfnfake.Fault{Status: 400, Type: "ThrottlingException"}, exitcode.Transient, 1, 2},
		"server error":  {sfnfake.Fault{Status: 500, Type: "ServiceUnavailable"}, exitcode.Transient, 1, 2},
		"access denied": {sfnfake.Fault{Status: 400, Type: "AccessDeniedException"}, exitcode.Usage, 0, -1},
		"no machine":    {sfnfake.Fault{Status: 400, Type: "StateMachineDoesNotExist"}, exitcode.Usage, 0, -1},
		"bad name":      {sfnfake.Fault{Status: 400, Type: "InvalidName"}, exitcode.Internal, 0, -1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, sandbox.Options{})
			f.addEntries(entries)
			f.sfn.StartFault = func(name string) (sfnfake.Fault, bool) {
				return tc.fault, name == ExecutionName("etr_b", entries["etr_b"], "")
			}
			var rec recorder
			cfg := f.config(t, now)
			cfg.Concurrency = 1
			cfg.Report = rec.report
			sum, err := Run(t.Context(), cfg)
			require.Error(t, err)
			require.Equal(t, tc.code, exitcode.Resolve(err), err.Error())
			require.Equal(t, tc.failed, sum.Failed)
			if tc.started >= 0 {
				require.Equal(t, tc.started, sum.Started)
				require.Equal(t, OutcomeFailed, rec.outcomes()["etr_b"])
				require.ErrorContains(t, err, "1 entries failed")
			}
			require.False(t, sum.StateRecorded)
			_, ok := f.store.get(quiltpkg.StateKey(testPrefix))
			require.False(t, ok, "a run with failures records nothing")
		})
	}
}

func TestStoreErrors(t *testing.T) {
	f := newFixture(t, sandbox.Options{})
	f.addEntries(map[string]time.Time{"etr_a": ago(time.Hour), "etr_b": ago(2 * time.Hour)})

	// The state cannot be read: nothing is listed.
	denied := exitcode.Wrap(errors.New("AccessDenied"), exitcode.Usage)
	f.store.getErr = func(string) error { return denied }
	_, err := Run(t.Context(), f.config(t, now))
	require.ErrorIs(t, err, denied)
	require.Equal(t, exitcode.Usage, exitcode.Resolve(err))
	require.Empty(t, f.entriesCalls())

	// entry.json cannot be read: a transient error counts as a failure...
	flaky := exitcode.Wrap(errors.New("connection reset"), exitcode.Transient)
	f.store.getErr = func(key string) error {
		if key == "benchling/etr_a/entry.json" {
			return flaky
		}
		return nil
	}
	sum, err := Run(t.Context(), f.config(t, now))
	require.Equal(t, exitcode.Transient, exitcode.Resolve(err))
	require.Equal(t, 1, sum.Failed)
	require.Equal(t, 1, sum.Started)
	require.Equal(t, []string{"etr_b"}, f.started())

	// ... and too many end the run early.
	f.store.getErr = func(key string) error {
		if key != quiltpkg.StateKey(testPrefix) {
			return flaky
		}
		return nil
	}
	cfg := f.config(t, now)
	cfg.MaxFailures = 1
	_, err = Run(t.Context(), cfg)
	require.ErrorContains(t, err, "stopping early")
	require.Equal(t, exitcode.Transient, exitcode.Resolve(err))
}

func TestBenchlingErrors(t *testing.T) {
	f := newFixture(t, sandbox.Options{})
	f.addEntries(map[string]time.Time{"etr_a": ago(time.Hour)})
	cfg := f.config(t, now)

	f.bench.FailNext(http.MethodGet, "/api/v2/entries", http.StatusServiceUnavailable, benchling.DefaultMaxAttempts)
	_, err := Run(t.Context(), cfg)
	require.Equal(t, exitcode.Transient, exitcode.Resolve(err))
	require.ErrorContains(t, err, "list entries")

	f.bench.FailNext(http.MethodGet, "/api/v2/entries", http.StatusBadRequest, 1)
	_, err = Run(t.Context(), cfg)
	require.Equal(t, exitcode.Internal, exitcode.Resolve(err), "never 3: reconcile has no user input")
	_, ok := f.store.get(quiltpkg.StateKey(testPrefix))
	require.False(t, ok)
}

// TestMaxStart: a run stops starting at --max-start, records nothing, and
// the next run starts the rest.
func TestMaxStart(t *testing.T) {
	f := newFixture(t, sandbox.Options{})
	f.addEntries(map[string]time.Time{"etr_a": ago(3 * time.Hour), "etr_b": ago(2 * time.Hour), "etr_c": ago(time.Hour)})
	cfg := f.config(t, now)
	cfg.MaxStart = 2
	sum, err := Run(t.Context(), cfg)
	require.NoError(t, err)
	require.Equal(t, 2, sum.Started)
	require.Equal(t, 1, sum.Deferred)
	require.False(t, sum.StateRecorded)

	sum, err = Run(t.Context(), cfg)
	require.NoError(t, err)
	require.Equal(t, 1, sum.Started, "already-started ones do not count against the cap")
	require.Equal(t, 2, sum.AlreadyStarted)
	require.Zero(t, sum.Deferred)
	require.True(t, sum.StateRecorded)
	require.Len(t, f.sfn.Executions(), 3)
}

// TestSinceAfterState: a --since window that starts after the recorded one
// does not move the state forward (it would skip the gap).
func TestSinceAfterState(t *testing.T) {
	f := newFixture(t, sandbox.Options{})
	f.addEntries(map[string]time.Time{"etr_a": ago(time.Hour)})
	st, _ := json.Marshal(State{LastSuccess: ago(72 * time.Hour)})
	f.store.put(quiltpkg.StateKey(testPrefix), st)
	cfg := f.config(t, now)
	cfg.Since = ago(2 * time.Hour)
	sum, err := Run(t.Context(), cfg)
	require.NoError(t, err)
	require.Equal(t, 1, sum.Started)
	require.False(t, sum.StateRecorded)
	got, found, err := ReadState(t.Context(), f.store, testPrefix)
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, ago(72*time.Hour), got.LastSuccess)

	// A corrupt state object: the default window, and it is replaced.
	f.store.put(quiltpkg.StateKey(testPrefix), []byte("garbage"))
	sum, err = Run(t.Context(), f.config(t, now))
	require.NoError(t, err)
	require.Equal(t, "default", sum.SinceFrom)
	require.True(t, sum.StateRecorded)
}

// TestInterrupted: SIGTERM while a StartExecution is in flight: the call
// finishes, nothing new starts, nothing is recorded.
func TestInterrupted(t *testing.T) {
	f := newFixture(t, sandbox.Options{})
	f.addEntries(map[string]time.Time{"etr_a": ago(3 * time.Hour), "etr_b": ago(2 * time.Hour), "etr_c": ago(time.Hour)})
	arrived, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	f.sfn.BeforeStart = func(string) {
		once.Do(func() {
			close(arrived)
			<-release
		})
	}
	ctx, cancel := context.WithCancelCause(t.Context())
	defer cancel(nil)
	go func() {
		<-arrived
		cancel(exitcode.Interrupted{Signal: syscall.SIGTERM})
		time.Sleep(50 * time.Millisecond) // let a call that would wrongly be cancelled fail first
		close(release)
	}()
	cfg := f.config(t, now)
	cfg.Concurrency = 1
	sum, err := Run(ctx, cfg)
	require.Error(t, err)
	require.Equal(t, 143, exitcode.Resolve(err))
	require.Equal(t, 1, sum.Started, "the call in flight finished")
	require.Zero(t, sum.Failed)
	require.Len(t, f.sfn.Executions(), 1, "nothing started after the signal")
	require.False(t, sum.StateRecorded)
	require.Zero(t, f.store.puts)
}

func TestConfigErrors(t *testing.T) {
	f := newFixture(t, sandbox.Options{})
	for name, edit := range map[string]func(*Config){
		"no prefix":    func(c *Config) { c.Prefix = "" },
		"bad prefix":   func(c *Config) { c.Prefix = "../x" },
		"no lister":    func(c *Config) { c.Lister = nil },
		"no packager":  func(c *Config) { c.Packager = nil },
		"no sfn":       func(c *Config) { c.Packager.Client = nil },
		"negative cap": func(c *Config) { c.MaxStart = -1 },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := f.config(t, now)
			edit(&cfg)
			_, err := Run(t.Context(), cfg)
			require.Equal(t, exitcode.Usage, exitcode.Resolve(err), err)
		})
	}
}

func TestExecutionName(t *testing.T) {
	at := time.Date(2025, 3, 6, 23, 25, 38, 693042000, time.UTC)
	long := "etr_" + strings.Repeat("abcdefghij", 7)
	tests := map[string]struct {
		entity, suffix string
		at             time.Time
		want           string // a regular expression
	}{
		"plain":       {"etr_abc", "", at, `^etr_abc-20250306T232538693042Z$`},
		"other zone":  {"etr_abc", "", at.In(time.FixedZone("x", -5*3600)), `^etr_abc-20250306T232538693042Z$`},
		"whole secs":  {"etr_abc", "", time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), `^etr_abc-20250102T030405000000Z$`},
		"suffix":      {"etr_abc", "r20250307T120000Z", at, `^etr_abc-20250306T232538693042Z-r20250307T120000Z$`},
		"odd chars":   {"etr:a/b", "", at, `^etr_a_b-[0-9a-f]{8}-20250306T232538693042Z$`},
		"long":        {long, "", at, `^` + long[:48] + `-[0-9a-f]{8}-20250306T232538693042Z$`},
		"long suffix": {long, "r20250307T120000Z", at, `^etr_[a-j]+-[0-9a-f]{8}-20250306T232538693042Z-r20250307T120000Z$`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := ExecutionName(tc.entity, tc.at, tc.suffix)
			require.LessOrEqual(t, len(got), MaxNameLen)
			require.Regexp(t, tc.want, got)
			require.NotEqual(t, got, ExecutionName(tc.entity+"x", tc.at, tc.suffix), "ids are told apart")
		})
	}
	require.Len(t, ExecutionName(long, at, ""), MaxNameLen)
	require.NotEqual(t, ExecutionName("etr_a", at, ""), ExecutionName("etr_a", at.Add(time.Microsecond), ""), "each version its own name")
}

// startFunc is a StartAPI from a function.
type startFunc func(*sfn.StartExecutionInput) (*sfn.StartExecutionOutput, error)

func (f startFunc) StartExecution(_ context.Context, in *sfn.StartExecutionInput, _ ...func(*sfn.Options)) (*sfn.StartExecutionOutput, error) {
	return f(in)
}

func (f startFunc) DescribeExecution(context.Context, *sfn.DescribeExecutionInput, ...func(*sfn.Options)) (*sfn.DescribeExecutionOutput, error) {
	return nil, errors.New("startFunc describes nothing")
}

// TestStartIdempotentAnswer: Step Functions answers a StartExecution with
// the name and input of a running execution with that execution: it is
// reported as already started.
func TestStartIdempotentAnswer(t *testing.T) {
	p := &Packager{StateMachineARN: testMachine, Registry: testBucket, Prefix: testPrefix, BaseURL: "https://t.benchling.com",
		Client: startFunc(func(in *sfn.StartExecutionInput) (*sfn.StartExecutionOutput, error) {
			return &sfn.StartExecutionOutput{ExecutionArn: aws.String(sfnfake.ExecutionARN(testMachine, *in.Name)), StartDate: aws.Time(now.Add(-time.Hour))}, nil
		}),
		Now: func() time.Time { return now },
	}
	s, err := p.Start(t.Context(), Target{Entity: "etr_a", ModifiedAt: ago(time.Hour), MessageType: MessageManual})
	require.NoError(t, err)
	require.True(t, s.AlreadyStarted)
	require.Equal(t, "arn:aws:states:us-east-1:123456789012:execution:app-env-worker-packaging:etr_a-20250307T110000000000Z", s.ARN)

	_, err = p.Start(t.Context(), Target{Entity: "etr_../x", ModifiedAt: now})
	require.Equal(t, exitcode.BadInput, exitcode.Resolve(err))
}
