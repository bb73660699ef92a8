package cli

import (
	"context"
	"encoding/json"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"benchling-webhook/internal/exitcode"
	"benchling-webhook/internal/reconcile"
	"benchling-webhook/internal/testkit/sandbox"
	"benchling-webhook/internal/testkit/sfnfake"
)

func (r commandRun) packageResult(t *testing.T) packageResult {
	t.Helper()
	var res packageResult
	require.NoError(t, json.Unmarshal(r.last, &res), "stdout's last line is the result: %s", r.stdout)
	require.Equal(t, r.code, res.ExitCode)
	return res
}

// outputLines returns stdout's lines before the result.
func (r commandRun) outputLines() []string {
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	return lines[:len(lines)-1]
}

func TestPackageCommand(t *testing.T) {
	tn := newTenant(t)
	a := time.Date(2025, 3, 6, 23, 25, 38, 693042000, time.UTC)
	b := a.Add(time.Hour)
	tn.bench.AddEntry("etr_a1", sandbox.EntryOptions{ModifiedAt: a})
	tn.bench.AddEntry("etr_b2", sandbox.EntryOptions{ModifiedAt: b})
	arnA := sfnfake.ExecutionARN(testMachineARN, "etr_a1-20250306T232538693042Z")
	arnB := sfnfake.ExecutionARN(testMachineARN, reconcile.ExecutionName("etr_b2", b, ""))

	r := runCommand(t.Context(), t, tn.env, "package", "etr_a1", "etr_b2", "etr_a1")
	require.Equal(t, exitcode.OK, r.code, r.stderr)
	require.Equal(t, []string{arnA, arnB}, r.outputLines(), "one ARN per entry, repeats once")
	res := r.packageResult(t)
	require.Len(t, res.Executions, 2)
	require.Equal(t, packageExecution{Entity: "etr_a1", ModifiedAt: "2025-03-06T23:25:38.693042Z", Name: "etr_a1-20250306T232538693042Z",
		ExecutionARN: arnA}, res.Executions[0])
	require.JSONEq(t, `{"entity":"etr_a1","packageName":"benchling/etr_a1","registry":"registry","baseURL":"`+tn.bench.URL()+`",
		"message":{"type":"manual","resourceId":"etr_a1","modifiedAt":"2025-03-06T23:25:38.693042Z"},"eventTime":"2025-03-06T23:25:38.693042Z"}`,
		tn.sfn.Executions()[0].Input)

	// Again: the same versions are already started.
	r = runCommand(t.Context(), t, tn.env, "package", "etr_a1")
	require.Equal(t, exitcode.OK, r.code, r.stderr)
	require.Equal(t, []string{"already started: " + arnA}, r.outputLines())
	require.True(t, r.packageResult(t).Executions[0].AlreadyStarted)
	require.Len(t, tn.sfn.Executions(), 2)

	// --repackage starts a new execution of the same version.
	r = runCommand(t.Context(), t, tn.env, "package", "--repackage", "etr_a1")
	require.Equal(t, exitcode.OK, r.code, r.stderr)
	require.Len(t, tn.sfn.Executions(), 3)
	require.Regexp(t, `^etr_a1-20250306T232538693042Z-r\d{8}T\d{6}Z$`, r.packageResult(t).Executions[0].Name)

	// The version's execution FAILED: it is started again as NAME-r1.
	require.True(t, tn.sfn.SetStatus(arnB, "FAILED", "ExportFailed", "Benchling reported the export as FAILED"))
	r = runCommand(t.Context(), t, tn.env, "package", "etr_b2")
	require.Equal(t, exitcode.OK, r.code, r.stderr)
	arnB1 := sfnfake.ExecutionARN(testMachineARN, reconcile.ExecutionName("etr_b2", b, "r1"))
	require.Equal(t, []string{arnB1}, r.outputLines())
	ex := r.packageResult(t).Executions[0]
	require.True(t, ex.Restarted)
	require.False(t, ex.AlreadyStarted)
	require.Equal(t, "FAILED", ex.PreviousStatus)
	require.Len(t, tn.sfn.Executions(), 4)
	r = runCommand(t.Context(), t, tn.env, "package", "etr_b2")
	require.Equal(t, []string{"already started: " + arnB1}, r.outputLines(), "the restart is running")
	require.Len(t, tn.sfn.Executions(), 4)
}

func TestPackageWait(t *testing.T) {
	tn := newTenant(t)
	tn.bench.AddEntry("etr_ok", sandbox.EntryOptions{ModifiedAt: time.Now().Add(-time.Hour)})
	tn.bench.AddEntry("etr_bad", sandbox.EntryOptions{ModifiedAt: time.Now().Add(-time.Hour)})
	tn.bench.AddEntry("etr_slow", sandbox.EntryOptions{ModifiedAt: time.Now().Add(-time.Hour)})
	tn.sfn.Complete = func(e sfnfake.Execution, n int) (string, string, string) {
		switch {
		case strings.HasPrefix(e.Name, "etr_ok-") && n >= 2:
			return "SUCCEEDED", "", ""
		case strings.HasPrefix(e.Name, "etr_bad-"):
			return "FAILED", "EntryNotFound", "Benchling does not know the entry"
		}
		return "", "", ""
	}
	wait := []string{"package", "--wait", "--poll-interval", "10ms"}

	r := runCommand(t.Context(), t, tn.env, append(wait, "etr_ok")...)
	require.Equal(t, exitcode.OK, r.code, r.stderr)
	ok := r.packageResult(t).Executions[0]
	require.Equal(t, "SUCCEEDED", ok.Status)
	require.Equal(t, []string{ok.ExecutionARN, ok.ExecutionARN + " SUCCEEDED"}, r.outputLines())
	require.GreaterOrEqual(t, tn.sfn.Calls("DescribeExecution"), 2, "polled until it ended")

	r = runCommand(t.Context(), t, tn.env, append(wait, "etr_ok", "etr_bad")...)
	require.Equal(t, exitcode.Internal, r.code, "a failed packaging: exit 1")
	res := r.packageResult(t)
	require.Equal(t, "FAILED", res.Executions[1].Status)
	require.Equal(t, "EntryNotFound", res.Executions[1].ExecutionError)
	require.Equal(t, "Benchling does not know the entry", res.Executions[1].Cause)
	require.Contains(t, r.stdout, `FAILED error="EntryNotFound" cause="Benchling does not know the entry"`)
	require.Contains(t, r.outputLines(), "already started: "+res.Executions[0].ExecutionARN)

	r = runCommand(t.Context(), t, tn.env, append(wait, "--timeout", "50ms", "etr_slow")...)
	require.Equal(t, exitcode.Transient, r.code, "still running at --timeout: exit 4")
	res = r.packageResult(t)
	require.Equal(t, "RUNNING", res.Executions[0].Status)
	require.Contains(t, res.Executions[0].Error, "still running after --timeout")

	// Interrupted while waiting: the execution keeps running, exit 130.
	ctx, cancel := context.WithCancelCause(t.Context())
	time.AfterFunc(50*time.Millisecond, func() { cancel(exitcode.Interrupted{Signal: syscall.SIGINT}) })
	r = runCommand(ctx, t, tn.env, append(wait, "etr_slow")...)
	require.Equal(t, 130, r.code, r.stderr)
	require.Equal(t, "interrupted", r.packageResult(t).ErrorKind)
}

func TestPackageErrors(t *testing.T) {
	tn := newTenant(t)
	tn.bench.AddEntry("etr_a1", sandbox.EntryOptions{})
	tests := map[string]struct {
		env   func(map[string]string)
		args  []string
		fault *sfnfake.Fault
		code  int
		want  string
	}{
		"no ids":         {nil, nil, nil, exitcode.Usage, "at least one entry id"},
		"not an id":      {nil, []string{"etr_a1", "EXP123"}, nil, exitcode.BadInput, `"EXP123" is not an entry id`},
		"a path":         {nil, []string{"etr_x/../etr_victim"}, nil, exitcode.BadInput, `"etr_x/../etr_victim" is not an entry id`},
		"query":          {nil, []string{"etr_a1?x=1", "etr_a1#top"}, nil, exitcode.BadInput, `"etr_a1#top" is not an entry id`},
		"no machine":     {func(e map[string]string) { delete(e, "PACKAGING_STATE_MACHINE_ARN") }, []string{"etr_a1"}, nil, exitcode.Usage, "PACKAGING_STATE_MACHINE_ARN"},
		"no secret":      {func(e map[string]string) { delete(e, "BENCHLING_CLIENT_SECRET") }, []string{"etr_a1"}, nil, exitcode.Usage, "BENCHLING_CLIENT_SECRET"},
		"bad timeout":    {nil, []string{"--timeout", "0s", "etr_a1"}, nil, exitcode.Usage, "--timeout"},
		"unknown entry":  {nil, []string{"etr_zz9"}, nil, exitcode.BadInput, "Entry etr_zz9 not found"},
		"wrong secret":   {func(e map[string]string) { e["BENCHLING_CLIENT_SECRET"] = "nope" }, []string{"etr_a1"}, nil, exitcode.Usage, "Invalid client credentials"},
		"throttled":      {nil, []string{"etr_a1"}, &sfnfake.Fault{Status: 400, Type: "ThrottlingException"}, exitcode.Transient, "ThrottlingException"},
		"access denied":  {nil, []string{"etr_a1"}, &sfnfake.Fault{Status: 400, Type: "AccessDeniedException"}, exitcode.Usage, "AccessDeniedException"},
		"unknown + fine": {nil, []string{"etr_zz9", "etr_a1"}, nil, exitcode.BadInput, "etr_zz9"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			env := copyEnv(tn.env)
			if tc.env != nil {
				tc.env(env)
			}
			tn.sfn.StartFault = func(string) (sfnfake.Fault, bool) {
				if tc.fault == nil {
					return sfnfake.Fault{}, false
				}
				return *tc.fault, true
			}
			r := runCommand(t.Context(), t, env, append([]string{"package", "--repackage"}, tc.args...)...)
			require.Equal(t, tc.code, r.code, r.stderr)
			res := r.packageResult(t)
			require.Contains(t, res.Error, tc.want)
			require.Equal(t, exitcode.Name(tc.code), res.ErrorKind)
		})
	}
	r := runCommand(t.Context(), t, tn.env, "package", "--help")
	require.Equal(t, exitcode.OK, r.code)
	require.Contains(t, r.stderr, "secretsmanager get-secret-value")
}

func TestEntriesErrorRank(t *testing.T) {
	for name, tc := range map[string]struct {
		codes []int
		want  int
	}{
		"all ok":            {[]int{0, 0}, 0},
		"transient":         {[]int{0, 4}, 4},
		"failed beats 4":    {[]int{4, 1}, 1},
		"bad input beats 1": {[]int{1, 3, 4}, 3},
		"usage beats all":   {[]int{3, 2, 1}, 2},
		"unranked is a bug": {[]int{0, 9}, 1},
	} {
		t.Run(name, func(t *testing.T) {
			var execs []packageExecution
			for _, c := range tc.codes {
				execs = append(execs, packageExecution{Entity: "etr_x", ExitCode: c, Error: "e"})
			}
			require.Equal(t, tc.want, exitcode.Resolve(entriesError(execs)))
		})
	}
}

// TestPackageBadID: an id that is not an entry id ends job package with
// exit 3 before any Benchling call or start, naming the id, even next to
// a good one.
func TestPackageBadID(t *testing.T) {
	tn := newTenant(t)
	tn.bench.AddEntry("etr_a1", sandbox.EntryOptions{})
	calls := len(tn.bench.Calls())
	r := runCommand(t.Context(), t, tn.env, "package", "etr_a1", "etr_x/../../entries/etr_victim")
	require.Equal(t, exitcode.BadInput, r.code, r.stderr)
	res := r.packageResult(t)
	require.Equal(t, "bad-input", res.ErrorKind)
	require.Contains(t, res.Error, `"etr_x/../../entries/etr_victim" is not an entry id`)
	require.Len(t, res.Executions, 1)
	require.Equal(t, "etr_x/../../entries/etr_victim", res.Executions[0].Entity)
	require.Equal(t, exitcode.BadInput, res.Executions[0].ExitCode)
	require.Len(t, tn.bench.Calls(), calls, "no Benchling call")
	require.Zero(t, tn.sfn.Calls("StartExecution"))
}
