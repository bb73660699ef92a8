package benchling

import (
	"context"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"benchling-webhook/internal/exitcode"
	"benchling-webhook/internal/testkit/sandbox"
)

// fakeWait makes c's export waits instant: each records its duration and
// moves c's clock on by it. It cancels ctx after 100 waits, so a wait
// without its bound ends.
func fakeWait(t *testing.T, c *Client) (*[]time.Duration, context.Context) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	now := time.Now()
	var waits []time.Duration
	c.now = func() time.Time { return now }
	c.sleep = func(_ context.Context, d time.Duration) error {
		waits = append(waits, d)
		now = now.Add(d)
		if len(waits) >= 100 {
			cancel()
			return context.Canceled
		}
		return nil
	}
	return &waits, ctx
}

// taskPolls counts the GETs of task id the sandbox answered.
func taskPolls(s *sandbox.Server, id string) int {
	n := 0
	for _, call := range s.Calls() {
		if call.Method == http.MethodGet && call.Path == "/api/v2/tasks/"+id {
			n++
		}
	}
	return n
}

// The poll's schedule: at once, then 1, 2, 4, 4… s, the last wait cut to
// end at the bound, where one more poll finds it still RUNNING: exit 7.
func TestWaitExportBackoffAndBound(t *testing.T) {
	s := startSandbox(t, sandbox.Options{})
	c, _ := newTestClient(t, s, nil)
	waits, ctx := fakeWait(t, c)
	id := startExport(t, s, "etr_wait0001", sandbox.ExportSpec{Never: true})
	_, err := c.WaitExport(ctx, id, ExportWait{First: time.Second, Max: 4 * time.Second, Total: 20 * time.Second})
	require.ErrorIs(t, err, ErrExportTimeout)
	assert.Equal(t, exitcode.ExportTimeout, exitcode.Resolve(err))
	assert.Contains(t, err.Error(), "still RUNNING after 20s (8 polls)")
	s4 := 4 * time.Second
	assert.Equal(t, []time.Duration{time.Second, 2 * time.Second, s4, s4, s4, s4, time.Second}, *waits)
	assert.Equal(t, 8, taskPolls(s, id), "one poll at once and one after each wait")
}

// A finished export is seen by the first poll: no wait at all.
func TestWaitExportDoneAtOnce(t *testing.T) {
	s := startSandbox(t, sandbox.Options{ExportDelay: -1})
	c, logs := newTestClient(t, s, nil)
	waits, ctx := fakeWait(t, c)
	id := startExport(t, s, "etr_wait0002", sandbox.ExportSpec{})
	link, err := c.WaitExport(ctx, id, ExportWait{First: 2 * time.Second, Max: 30 * time.Second, Total: time.Hour})
	require.NoError(t, err)
	assert.Empty(t, *waits)
	assert.Equal(t, 1, taskPolls(s, id))
	assert.Contains(t, link, "X-Amz-Signature=")
	assert.NotContains(t, logs.String(), link)
	assert.NotContains(t, logs.String(), "X-Amz-Signature")
}

// An export that takes a while: polled on real timers until it SUCCEEDED,
// its link returned and never logged.
func TestWaitExportSucceeds(t *testing.T) {
	s := startSandbox(t, sandbox.Options{ExportDelay: 150 * time.Millisecond})
	c, logs := newTestClient(t, s, nil)
	id := startExport(t, s, "etr_wait0003", sandbox.ExportSpec{})
	link, err := c.WaitExport(t.Context(), id, ExportWait{First: 10 * time.Millisecond, Max: 40 * time.Millisecond, Total: 10 * time.Second})
	require.NoError(t, err)
	assert.Contains(t, s.DownloadURLs(), link)
	assert.Greater(t, taskPolls(s, id), 1)
	assert.Contains(t, logs.String(), `"status":"RUNNING"`)
	assert.NotContains(t, logs.String(), link)
}

// FAILED is exit 6 with Benchling's message.
func TestWaitExportFailed(t *testing.T) {
	s := startSandbox(t, sandbox.Options{ExportDelay: -1})
	c, _ := newTestClient(t, s, nil)
	_, ctx := fakeWait(t, c)
	id := startExport(t, s, "etr_wait0004", sandbox.ExportSpec{Fail: true})
	_, err := c.WaitExport(ctx, id, ExportWait{First: time.Second, Max: time.Second, Total: time.Minute})
	require.ErrorIs(t, err, ErrExportFailed)
	assert.Equal(t, exitcode.ExportFailed, exitcode.Resolve(err))
	assert.Contains(t, err.Error(), "FAILED: Export of etr_wait0004 failed")
	assert.Equal(t, 1, taskPolls(s, id), "a failed task is not polled again")
}

// A 429 on a poll waits what x-rate-limit-reset says and polls again, as
// every request of the client does.
func TestWaitExportRateLimited(t *testing.T) {
	const window = time.Second
	s := startSandbox(t, sandbox.Options{ExportDelay: -1, RateWindow: window})
	c, _ := newTestClient(t, s, nil)
	_, ctx := fakeWait(t, c)
	id := startExport(t, s, "etr_wait0005", sandbox.ExportSpec{})
	s.FailNext(http.MethodGet, "/api/v2/tasks/"+id, http.StatusTooManyRequests, 1)
	start := time.Now()
	_, err := c.WaitExport(ctx, id, ExportWait{First: time.Second, Max: time.Second, Total: time.Minute})
	require.NoError(t, err)
	assert.GreaterOrEqual(t, time.Since(start), window-100*time.Millisecond, "it waited for the window to reset")
	var statuses []int
	for _, call := range s.Calls() {
		if call.Path == "/api/v2/tasks/"+id {
			statuses = append(statuses, call.Status)
		}
	}
	assert.Equal(t, []int{http.StatusTooManyRequests, http.StatusOK}, statuses)
}

// SIGTERM during a wait ends it at once, with the signal as the cause.
func TestWaitExportInterrupted(t *testing.T) {
	s := startSandbox(t, sandbox.Options{})
	c, _ := newTestClient(t, s, nil)
	id := startExport(t, s, "etr_wait0006", sandbox.ExportSpec{Never: true})
	ctx, cancel := context.WithCancelCause(t.Context())
	time.AfterFunc(50*time.Millisecond, func() { cancel(exitcode.Interrupted{Signal: syscall.SIGTERM}) })
	start := time.Now()
	_, err := c.WaitExport(ctx, id, ExportWait{First: time.Hour, Max: time.Hour, Total: 2 * time.Hour})
	require.Error(t, err)
	assert.Equal(t, 143, exitcode.Resolve(err))
	assert.Less(t, time.Since(start), 10*time.Second, "the wait ended with the signal")
}

func TestWaitExportConfig(t *testing.T) {
	s := startSandbox(t, sandbox.Options{})
	c, _ := newTestClient(t, s, nil)
	_, err := c.WaitExport(t.Context(), "00000000-0000-4000-8000-000000000000", ExportWait{Total: time.Minute})
	require.ErrorIs(t, err, ErrConfig)
}
