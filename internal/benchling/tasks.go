package benchling

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"benchling-webhook/internal/exitcode"
)

// Statuses of an [ExportTask] (AsyncTask.status in Benchling's API).
const (
	TaskRunning   = "RUNNING"
	TaskSucceeded = "SUCCEEDED"
	TaskFailed    = "FAILED"
)

// ErrTaskNotDone is wrapped by the error of [Client.ExportDownloadURL] for
// a task that has not SUCCEEDED (still running, or failed): bad input (exit
// code 3), as asking again for the same task does not finish it.
var ErrTaskNotDone = exitcode.NewSentinel("benchling: the export task has not succeeded", exitcode.BadInput)

// ExportTask is Benchling's answer about an export task (getTask,
// ExportsAsyncTask). DownloadURL is a presigned link, a read capability for
// the export: keep it out of logs, errors and anything persisted (see
// docs/architecture.md, "No capability in the history").
type ExportTask struct {
	ID      string // the task id it was asked for
	Status  string // RUNNING, SUCCEEDED or FAILED
	Message string // Benchling's reason, when FAILED
	// DownloadURL is the export ZIP's link, when SUCCEEDED.
	DownloadURL string
}

// CheckTaskID reports whether id can be a Benchling task id: Benchling's are
// UUIDs; anything that is not one path segment of letters, digits and '-'
// is refused before a request is made.
func CheckTaskID(id string) error {
	if id == "" || len(id) > 64 || strings.Trim(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") != "" {
		return fmt.Errorf("benchling: %q is not an export task id (a UUID such as f438d656-c2c3-40a4-b3fd-d7e58db78242)", id)
	}
	return nil
}

// GetExportTask reads export task id (GET /api/v2/tasks/{id}), retried as
// every request ([Client]). A task Benchling does not know is an
// [*APIError] that matches [ErrNotFound].
func (c *Client) GetExportTask(ctx context.Context, id string) (ExportTask, error) {
	if err := CheckTaskID(id); err != nil {
		return ExportTask{}, exitcode.Wrap(err, exitcode.Usage)
	}
	var resp struct {
		Status   string `json:"status"`
		Message  string `json:"message"`
		Response struct {
			DownloadURL string `json:"downloadURL"`
		} `json:"response"`
	}
	if err := c.getJSON(ctx, "/api/v2/tasks/"+url.PathEscape(id), nil, &resp); err != nil {
		return ExportTask{}, err
	}
	return ExportTask{ID: id, Status: resp.Status, Message: resp.Message, DownloadURL: resp.Response.DownloadURL}, nil
}

// ExportDownloadURL asks Benchling for the download link of the finished
// export task id: a fresh answer each call, so a caller whose link has
// expired calls it again. A task that has not SUCCEEDED, or SUCCEEDED
// without a link, is an error wrapping [ErrTaskNotDone]. The link is in the
// result only, never in an error.
func (c *Client) ExportDownloadURL(ctx context.Context, id string) (string, error) {
	t, err := c.GetExportTask(ctx, id)
	if err != nil {
		return "", err
	}
	if t.Status != TaskSucceeded {
		msg := ""
		if t.Message != "" {
			msg = ": " + t.Message
		}
		return "", fmt.Errorf("%w: task %s is %s%s", ErrTaskNotDone, id, t.Status, msg)
	}
	return downloadLink(t)
}

var (
	// ErrExportFailed is wrapped by the error of [Client.WaitExport] for a
	// task Benchling ended FAILED (or with a status it does not document):
	// exit code 6, as asking again finds the same task failed.
	ErrExportFailed = exitcode.NewSentinel("benchling: the export task failed", exitcode.ExportFailed)
	// ErrExportTimeout is wrapped by the error of [Client.WaitExport] for a
	// task still running when [ExportWait.Total] has passed: exit code 7.
	ErrExportTimeout = exitcode.NewSentinel("benchling: the export did not finish in time", exitcode.ExportTimeout)
)

// Defaults of [ExportWait], the deployment's (docs/deploy.md,
// ExportFirstPollSeconds, ExportMaxPollSeconds, ExportTimeoutSeconds).
const (
	DefaultExportFirstPoll = 2 * time.Second
	DefaultExportMaxPoll   = 30 * time.Second
	DefaultExportWait      = 30 * time.Minute
)

// ExportWait is how [Client.WaitExport] polls an export task: at once,
// then after First, each later wait twice the last up to Max, until Total
// has passed since the first poll (the last wait is cut short to end at
// Total, where one more poll decides). First and Total must be positive;
// a Max below First means First.
type ExportWait struct {
	First, Max, Total time.Duration
}

// WaitExport polls export task id (GET /api/v2/tasks/{id}, each poll
// retried as every request, 429's x-rate-limit-reset included) until it
// SUCCEEDED, and returns its download link (checked as by
// [Client.ExportDownloadURL]). A FAILED task is an error wrapping
// [ErrExportFailed] with Benchling's message; one still RUNNING (or
// QUEUED) after w.Total an error wrapping [ErrExportTimeout]; a cancelled
// ctx ends the wait with its cause. Each poll is logged at debug level
// with the task's status; the link is in the result only.
func (c *Client) WaitExport(ctx context.Context, id string, w ExportWait) (string, error) {
	if w.First <= 0 || w.Total <= 0 {
		return "", fmt.Errorf("%w: the export wait's first poll and total must be positive", ErrConfig)
	}
	w.Max = max(w.Max, w.First)
	start := c.now()
	next := w.First
	for polls := 1; ; polls++ {
		t, err := c.GetExportTask(ctx, id)
		if err != nil {
			return "", err
		}
		waited := c.now().Sub(start)
		c.cfg.Logger.Debug("export task polled", "task", id, "status", t.Status, "poll", polls, "waited", waited.Round(time.Millisecond).String())
		switch t.Status {
		case TaskSucceeded:
			return downloadLink(t)
		case TaskRunning, "QUEUED":
		default:
			msg := ""
			if t.Message != "" {
				msg = ": " + t.Message
			}
			return "", fmt.Errorf("%w: task %s is %s%s", ErrExportFailed, id, cmpOr(t.Status, "without a status"), msg)
		}
		if waited >= w.Total {
			return "", fmt.Errorf("%w: task %s still %s after %s (%d polls)", ErrExportTimeout, id, t.Status, waited.Round(time.Second), polls)
		}
		if err := c.sleep(ctx, min(next, w.Total-waited)); err != nil {
			return "", fmt.Errorf("benchling: wait for export task %s: %w", id, err)
		}
		next = min(2*next, w.Max)
	}
}

// downloadLink is the link of t, a task that SUCCEEDED, checked: an error
// wrapping [ErrTaskNotDone] when there is none, never the link in an error.
func downloadLink(t ExportTask) (string, error) {
	if t.DownloadURL == "" {
		return "", fmt.Errorf("%w: task %s SUCCEEDED without a download URL", ErrTaskNotDone, t.ID)
	}
	if u, err := url.Parse(t.DownloadURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", errors.New("benchling: the export task's download URL is not an http(s) URL")
	}
	return t.DownloadURL, nil
}

// sleepCtx waits d, or until ctx is done (its cause).
func sleepCtx(ctx context.Context, d time.Duration) error {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
