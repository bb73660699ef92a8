package benchling

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

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
	switch {
	case t.Status != TaskSucceeded:
		msg := ""
		if t.Message != "" {
			msg = ": " + t.Message
		}
		return "", fmt.Errorf("%w: task %s is %s%s", ErrTaskNotDone, id, t.Status, msg)
	case t.DownloadURL == "":
		return "", fmt.Errorf("%w: task %s SUCCEEDED without a download URL", ErrTaskNotDone, id)
	}
	if u, err := url.Parse(t.DownloadURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", errors.New("benchling: the export task's download URL is not an http(s) URL")
	}
	return t.DownloadURL, nil
}
