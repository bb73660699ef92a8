package reconcile

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"benchling-webhook/internal/exitcode"
	"benchling-webhook/internal/quiltpkg"
	"benchling-webhook/internal/testkit/sandbox"
	"benchling-webhook/internal/testkit/sfnfake"
)

// TestRestart: a version whose execution name is taken is described: a
// running one is left alone, one that ended without a package is started
// again as NAME-rN, and past MaxRestarts it is given up.
func TestRestart(t *testing.T) {
	f := newFixture(t, sandbox.Options{})
	entries := map[string]time.Time{
		"etr_new": ago(6 * time.Hour), "etr_running": ago(5 * time.Hour), "etr_failed": ago(4 * time.Hour),
		"etr_succeeded": ago(3 * time.Hour), "etr_chain": ago(2 * time.Hour), "etr_dead": ago(time.Hour),
	}
	f.addEntries(entries)
	name := func(id, suffix string) string { return ExecutionName(id, entries[id], suffix) }
	f.sfn.Add(testMachine, name("etr_running", ""), "RUNNING")
	f.sfn.Add(testMachine, name("etr_failed", ""), "FAILED")
	f.sfn.Add(testMachine, name("etr_succeeded", ""), "SUCCEEDED") // and yet no package: stale
	f.sfn.Add(testMachine, name("etr_chain", ""), "TIMED_OUT")
	f.sfn.Add(testMachine, name("etr_chain", "r1"), "ABORTED")
	f.sfn.Add(testMachine, name("etr_chain", "r2"), "PENDING_REDRIVE")
	f.sfn.Add(testMachine, name("etr_dead", ""), "FAILED")
	for i := 1; i <= MaxRestarts; i++ {
		f.sfn.Add(testMachine, name("etr_dead", fmt.Sprintf("r%d", i)), "FAILED")
	}
	before := len(f.sfn.Executions())

	var rec recorder
	cfg := f.config(t, now)
	cfg.Report = rec.report
	sum, err := Run(t.Context(), cfg)
	require.NoError(t, err, "a version given up on does not fail the run")
	require.Equal(t, 6, sum.Stale)
	require.Equal(t, 1, sum.Started)
	require.Equal(t, 2, sum.Restarted)
	require.Equal(t, 2, sum.AlreadyStarted)
	require.Equal(t, 2, sum.Skipped())
	require.Equal(t, 1, sum.GaveUp)
	require.Zero(t, sum.Failed)
	require.True(t, sum.StateRecorded)
	st, _, err := ReadState(t.Context(), f.store, testPrefix)
	require.NoError(t, err)
	require.Equal(t, 2, st.Restarted)

	var made []string
	for _, e := range f.sfn.Executions()[before:] {
		made = append(made, e.Name)
	}
	require.ElementsMatch(t, []string{name("etr_new", ""), name("etr_failed", "r1"), name("etr_succeeded", "r1")}, made)
	got := map[string]Action{}
	for _, a := range rec.actions {
		got[a.Entity] = a
	}
	require.Equal(t, OutcomeStarted, got["etr_new"].Outcome)
	require.Equal(t, Action{Entity: "etr_failed", ModifiedAt: entries["etr_failed"], Reason: ReasonMissing, Detail: "no benchling/etr_failed/entry.json", Outcome: OutcomeRestarted,
		Execution: name("etr_failed", "r1"), ARN: sfnfake.ExecutionARN(testMachine, name("etr_failed", "r1")), PreviousStatus: "FAILED"}, got["etr_failed"])
	require.Equal(t, OutcomeRestarted, got["etr_succeeded"].Outcome)
	require.Equal(t, "SUCCEEDED", got["etr_succeeded"].PreviousStatus)
	require.Equal(t, OutcomeAlreadyStarted, got["etr_running"].Outcome)
	require.Equal(t, name("etr_running", ""), got["etr_running"].Execution)
	require.Equal(t, OutcomeAlreadyStarted, got["etr_chain"].Outcome)
	require.Equal(t, name("etr_chain", "r2"), got["etr_chain"].Execution, "the restart that is still running")
	require.Equal(t, OutcomeGaveUp, got["etr_dead"].Outcome)
	require.Equal(t, name("etr_dead", "r5"), got["etr_dead"].Execution)
	require.Contains(t, got["etr_dead"].Error, ErrRestartLimit.Error())
	require.Contains(t, f.logs.String(), "packaging given up")
	// One describe per taken name: running 1, failed 1, succeeded 1,
	// chain 3, dead 6.
	require.Equal(t, 12, f.sfn.Calls("DescribeExecution"))

	// The restarts failed too: the next run starts -r2, and counts the
	// ones still running as already started.
	f.sfn.SetStatusOf(name("etr_failed", "r1"), "FAILED")
	cfg = f.config(t, now)
	cfg.Since = now.Add(-DefaultWindow)
	sum, err = Run(t.Context(), cfg)
	require.NoError(t, err)
	require.Equal(t, 1, sum.Restarted)
	require.Equal(t, 4, sum.AlreadyStarted, "new, succeeded-r1, running, chain-r2")
	require.Equal(t, name("etr_failed", "r2"), f.sfn.Executions()[len(f.sfn.Executions())-1].Name)
}

// TestRestartCountsAgainstMaxStart: a restart is a new execution.
func TestRestartCountsAgainstMaxStart(t *testing.T) {
	f := newFixture(t, sandbox.Options{})
	entries := map[string]time.Time{"etr_a": ago(2 * time.Hour), "etr_b": ago(time.Hour)}
	f.addEntries(entries)
	f.sfn.Add(testMachine, ExecutionName("etr_a", entries["etr_a"], ""), "FAILED")
	f.sfn.Add(testMachine, ExecutionName("etr_b", entries["etr_b"], ""), "ABORTED")
	cfg := f.config(t, now)
	cfg.MaxStart = 1
	sum, err := Run(t.Context(), cfg)
	require.NoError(t, err)
	require.Equal(t, 1, sum.Restarted)
	require.Equal(t, 1, sum.Deferred)
	require.False(t, sum.StateRecorded)
}

func TestDescribeFailures(t *testing.T) {
	tests := map[string]struct {
		fault  sfnfake.Fault
		code   int
		failed int
	}{
		"throttled": {sfnfake.Fault{Status: 400, Type: "ThrottlingException"}, exitcode.Transient, 1},
		// A standard execution is described consistently at once: one
		// that does not exist is configuration (docs/architecture.md).
		"gone":          {sfnfake.Fault{Status: 400, Type: "ExecutionDoesNotExist"}, exitcode.Usage, 0},
		"access denied": {sfnfake.Fault{Status: 400, Type: "AccessDeniedException"}, exitcode.Usage, 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, sandbox.Options{})
			at := ago(time.Hour)
			f.addEntries(map[string]time.Time{"etr_a": at, "etr_b": ago(2 * time.Hour)})
			f.sfn.Add(testMachine, ExecutionName("etr_a", at, ""), "FAILED")
			f.sfn.DescribeFault = func(string) (sfnfake.Fault, bool) { return tc.fault, true }
			cfg := f.config(t, now)
			cfg.Concurrency = 1
			sum, err := Run(t.Context(), cfg)
			require.Equal(t, tc.code, exitcode.Resolve(err), err)
			require.ErrorContains(t, err, "states:DescribeExecution")
			require.Equal(t, tc.failed, sum.Failed)
			require.Zero(t, sum.Restarted)
			require.False(t, sum.StateRecorded)
		})
	}
}

// TestPackagerStart: job package's rules (no RestartSucceeded) and a
// hand-picked suffix.
func TestPackagerStart(t *testing.T) {
	f := newFixture(t, sandbox.Options{})
	cfg := f.config(t, now)
	p := cfg.Packager
	at := ago(time.Hour)
	tests := map[string]struct {
		status           string
		suffix           string
		restartSucceeded bool
		want             Started
	}{
		"running":                  {"RUNNING", "", false, Started{Name: "NAME", AlreadyStarted: true, PreviousStatus: "RUNNING"}},
		"succeeded, package":       {"SUCCEEDED", "", false, Started{Name: "NAME", AlreadyStarted: true, PreviousStatus: "SUCCEEDED"}},
		"succeeded, stale package": {"SUCCEEDED", "", true, Started{Name: "NAME-r1", Restarted: true, PreviousStatus: "SUCCEEDED"}},
		"failed":                   {"FAILED", "", false, Started{Name: "NAME-r1", Restarted: true, PreviousStatus: "FAILED"}},
		"unknown status":           {"SOMETHING_NEW", "", true, Started{Name: "NAME", AlreadyStarted: true, PreviousStatus: "SOMETHING_NEW"}},
		"suffix taken":             {"FAILED", "r20250307T120000Z", false, Started{Name: "NAME-r20250307T120000Z", AlreadyStarted: true}},
	}
	i := 0
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			i++
			id := fmt.Sprintf("etr_s%d", i)
			base := ExecutionName(id, at, "")
			f.sfn.Add(testMachine, ExecutionName(id, at, tc.suffix), tc.status)
			s, err := p.Start(t.Context(), Target{Entity: id, ModifiedAt: at, MessageType: MessageManual, NameSuffix: tc.suffix, RestartSucceeded: tc.restartSucceeded})
			require.NoError(t, err)
			tc.want.Name = strings.Replace(tc.want.Name, "NAME", base, 1)
			tc.want.ARN = sfnfake.ExecutionARN(testMachine, tc.want.Name)
			require.Equal(t, tc.want, s)
		})
	}

	// Every name up to -r5 taken by a failure: ErrRestartLimit, exit 1.
	for i := range MaxRestarts + 1 {
		suffix := ""
		if i > 0 {
			suffix = fmt.Sprintf("r%d", i)
		}
		f.sfn.Add(testMachine, ExecutionName("etr_dead", at, suffix), "TIMED_OUT")
	}
	s, err := p.Start(t.Context(), Target{Entity: "etr_dead", ModifiedAt: at, MessageType: MessageManual})
	require.ErrorIs(t, err, ErrRestartLimit)
	require.Equal(t, exitcode.Internal, exitcode.Resolve(err))
	require.Equal(t, "TIMED_OUT", s.PreviousStatus)

	// The names stay within Step Functions' limit.
	long := "etr_" + strings.Repeat("x", quiltpkg.MaxEntryIDLen-4)
	require.True(t, quiltpkg.ValidEntryID(long))
	require.LessOrEqual(t, len(ExecutionName(long, at, fmt.Sprintf("r%d", MaxRestarts))), MaxNameLen)
}

func TestTurn(t *testing.T) {
	t0 := time.Date(2025, 3, 7, 12, 0, 0, 0, time.UTC)
	tests := map[string]struct {
		next, now     time.Time
		at, following time.Time
	}{
		"first call":     {time.Time{}, t0, t0, t0.Add(2 * time.Second)},
		"too soon":       {t0.Add(2 * time.Second), t0.Add(time.Second), t0.Add(2 * time.Second), t0.Add(4 * time.Second)},
		"after a pause":  {t0.Add(2 * time.Second), t0.Add(time.Minute), t0.Add(time.Minute), t0.Add(time.Minute + 2*time.Second)},
		"right on cue":   {t0.Add(2 * time.Second), t0.Add(2 * time.Second), t0.Add(2 * time.Second), t0.Add(4 * time.Second)},
		"queued callers": {t0.Add(6 * time.Second), t0, t0.Add(6 * time.Second), t0.Add(8 * time.Second)},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			at, following := turn(tc.next, tc.now, 2*time.Second)
			require.Equal(t, tc.at, at)
			require.Equal(t, tc.following, following)
		})
	}
}

// fakeTimers is a Pacer's After that records the waits and fires each
// timer when told (or at once, with instant).
type fakeTimers struct {
	mu      sync.Mutex
	waits   []time.Duration
	instant bool
	waiting chan time.Duration // gets each wait, when not instant
}

func (ft *fakeTimers) after(d time.Duration) <-chan time.Time {
	ft.mu.Lock()
	ft.waits = append(ft.waits, d)
	ft.mu.Unlock()
	c := make(chan time.Time, 1)
	if ft.instant {
		c <- time.Time{}
		return c
	}
	ft.waiting <- d
	return c // never fires
}

func (ft *fakeTimers) recorded() []time.Duration {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	out := slices.Clone(ft.waits)
	slices.Sort(out)
	return out
}

func TestPacerWait(t *testing.T) {
	clock := now
	ft := &fakeTimers{instant: true}
	p := &Pacer{Interval: time.Second, Now: func() time.Time { return clock }, After: ft.after}
	for range 3 {
		require.NoError(t, p.Wait(t.Context()))
	}
	require.Equal(t, []time.Duration{time.Second, 2 * time.Second}, ft.recorded(), "the first goes at once, the others a second apart")
	clock = clock.Add(time.Minute)
	require.NoError(t, p.Wait(t.Context()))
	require.Len(t, ft.recorded(), 2, "after a pause, at once")

	// No interval: no waiting; a cancelled wait returns at once.
	require.NoError(t, (&Pacer{}).Wait(t.Context()))
	ft = &fakeTimers{waiting: make(chan time.Duration, 1)}
	p = &Pacer{Interval: time.Second, Now: func() time.Time { return clock }, After: ft.after}
	require.NoError(t, p.Wait(t.Context()))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- p.Wait(ctx) }()
	require.Equal(t, time.Second, <-ft.waiting)
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
}

// TestRunPaced: a run's StartExecution calls are spaced by StartInterval,
// and restarts are paced too.
func TestRunPaced(t *testing.T) {
	f := newFixture(t, sandbox.Options{})
	entries := map[string]time.Time{"etr_a": ago(3 * time.Hour), "etr_b": ago(2 * time.Hour), "etr_c": ago(time.Hour)}
	f.addEntries(entries)
	f.sfn.Add(testMachine, ExecutionName("etr_c", entries["etr_c"], ""), "FAILED")
	ft := &fakeTimers{instant: true}
	cfg := f.config(t, now) // the clock stands still: each turn is an interval after the last
	cfg.StartInterval = 2 * time.Second
	cfg.after = ft.after
	sum, err := Run(t.Context(), cfg)
	require.NoError(t, err)
	require.Equal(t, 2, sum.Started)
	require.Equal(t, 1, sum.Restarted)
	require.Equal(t, 4, f.sfn.Calls("StartExecution"))
	require.Equal(t, []time.Duration{2 * time.Second, 4 * time.Second, 6 * time.Second}, ft.recorded())
}

// TestInterruptedWhilePaced: SIGTERM while starts wait their turn: none of
// them starts, and none counts as failed.
func TestInterruptedWhilePaced(t *testing.T) {
	f := newFixture(t, sandbox.Options{})
	f.addEntries(map[string]time.Time{"etr_a": ago(3 * time.Hour), "etr_b": ago(2 * time.Hour), "etr_c": ago(time.Hour)})
	ft := &fakeTimers{waiting: make(chan time.Duration, 3)}
	arrived := make(chan struct{})
	var once sync.Once
	f.sfn.BeforeStart = func(string) { once.Do(func() { close(arrived) }) }
	ctx, cancel := context.WithCancelCause(t.Context())
	defer cancel(nil)
	go func() {
		<-arrived    // the first start is made at once...
		<-ft.waiting // ... and the next waits its turn
		cancel(exitcode.Interrupted{Signal: syscall.SIGTERM})
	}()
	cfg := f.config(t, now)
	cfg.StartInterval = time.Minute
	cfg.after = ft.after
	sum, err := Run(ctx, cfg)
	require.Equal(t, 143, exitcode.Resolve(err))
	require.Equal(t, 1, sum.Started)
	require.Zero(t, sum.Failed)
	require.Len(t, f.sfn.Executions(), 1)
	require.False(t, sum.StateRecorded)
}
