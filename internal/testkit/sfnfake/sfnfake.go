// Package sfnfake is a fake Step Functions endpoint on the real awsJson1_0
// protocol: [Server] records executions, [Handler] serves any [Backend].
// See docs/testkit.md#sfnfake-a-fake-step-functions-endpoint.
package sfnfake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Execution is one execution as DescribeExecution reports it.
type Execution struct {
	ARN, Name, StateMachineARN string
	// Input is the execution's input as sent.
	Input string
	// Status is RUNNING, SUCCEEDED, FAILED, TIMED_OUT or ABORTED; Error and
	// Cause are set for the failed ones.
	Status, Error, Cause string
	// Output is a SUCCEEDED execution's output.
	Output string
	// StopDate is zero while the execution runs (DescribeExecution then
	// reports the time of the call for one that is not RUNNING).
	StartDate, StopDate time.Time
	describes           int
}

// Error is an answer in Step Functions' error shape: an HTTP status, the
// error type ("ExecutionDoesNotExist", "ThrottlingException") and a
// message. A [Backend] returns it to choose the answer.
type Error struct {
	Status        int
	Type, Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%s (HTTP %d): %s", e.Type, e.Status, e.Message) }

// Backend holds the executions a [Handler] serves. Errors of type *[Error]
// are sent as they are; any other is a 500 ServiceException.
type Backend interface {
	StartExecution(ctx context.Context, machineARN, name, input string) (Execution, error)
	DescribeExecution(ctx context.Context, arn string) (Execution, error)
}

// Request is what a [Handler] received: the action (the X-Amz-Target
// after "AWSStepFunctions."), whether it was signed, and the fields of
// the body that StartExecution and DescribeExecution use.
type Request struct {
	Action          string `json:"-"`
	Signed          bool   `json:"-"`
	ExecutionArn    string `json:"executionArn"`
	StateMachineArn string `json:"stateMachineArn"`
	Name            string `json:"name"`
	Input           string `json:"input"`
	IncludedData    string `json:"includedData"`
}

// Handler answers StartExecution and DescribeExecution (POST with
// X-Amz-Target: AWSStepFunctions.<Action>) from Backend.
type Handler struct {
	Backend Backend
	// AllowUnsigned accepts requests without a SigV4 Authorization
	// header; by default they get MissingAuthenticationToken, as from AWS.
	AllowUnsigned bool
	// Observe, if set, is called with every request, before it is checked.
	Observe func(Request)
}

// ExecutionARN is the ARN Step Functions gives the execution name of the
// state machine machineARN.
func ExecutionARN(machineARN, name string) string {
	return strings.Replace(machineARN, ":stateMachine:", ":execution:", 1) + ":" + name
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var in Request
	target, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "AWSStepFunctions.")
	decodeErr := json.NewDecoder(r.Body).Decode(&in)
	in.Action, in.Signed = target, strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256")
	if h.Observe != nil {
		h.Observe(in)
	}
	switch {
	case r.Method != http.MethodPost || !ok:
		writeError(w, &Error{http.StatusBadRequest, "UnknownOperationException", "missing X-Amz-Target"})
		return
	case !in.Signed && !h.AllowUnsigned:
		writeError(w, &Error{http.StatusBadRequest, "MissingAuthenticationToken", "unsigned request"})
		return
	case decodeErr != nil:
		writeError(w, &Error{http.StatusBadRequest, "SerializationException", decodeErr.Error()})
		return
	}
	switch in.Action {
	case "StartExecution":
		e, err := h.Backend.StartExecution(r.Context(), in.StateMachineArn, in.Name, in.Input)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, map[string]any{"executionArn": e.ARN, "startDate": epoch(e.StartDate)})
	case "DescribeExecution":
		e, err := h.Backend.DescribeExecution(r.Context(), in.ExecutionArn)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, describe(e))
	default:
		writeError(w, &Error{http.StatusBadRequest, "UnknownOperationException", "the fake does not implement " + in.Action})
	}
}

// describe is DescribeExecution's answer for e.
func describe(e Execution) map[string]any {
	d := map[string]any{
		"executionArn": e.ARN, "stateMachineArn": e.StateMachineARN, "name": e.Name,
		"status": e.Status, "startDate": epoch(e.StartDate),
		"input": e.Input, "inputDetails": map[string]bool{"included": true},
	}
	switch {
	case !e.StopDate.IsZero():
		d["stopDate"] = epoch(e.StopDate)
	case e.Status != "RUNNING":
		d["stopDate"] = epoch(time.Now())
	}
	if e.Status == "SUCCEEDED" && e.Output != "" {
		d["output"] = e.Output
		d["outputDetails"] = map[string]bool{"included": true}
	}
	if e.Error != "" {
		d["error"], d["cause"] = e.Error, e.Cause
	}
	return d
}

func epoch(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	_ = json.NewEncoder(w).Encode(v)
}

// writeError writes err in Step Functions' error shape (the type in the
// body's __type and in X-Amzn-Errortype).
func writeError(w http.ResponseWriter, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{http.StatusInternalServerError, "ServiceException", err.Error()}
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.Header().Set("X-Amzn-Errortype", e.Type)
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": "com.amazonaws.swf.service.v2.model#" + e.Type, "message": e.Message})
}
