package emulate

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"
)

// serveSFN answers the Step Functions API calls the job makes
// (DescribeExecution) and StartExecution, on the awsJson1_0 protocol
// (POST with X-Amz-Target: AWSStepFunctions.<Action>).
// Requests are not authenticated.
func (s *Stack) serveSFN(w http.ResponseWriter, r *http.Request) {
	action, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "AWSStepFunctions.")
	if !ok {
		sfnError(w, http.StatusBadRequest, "UnknownOperationException", "missing X-Amz-Target")
		return
	}
	var in struct {
		ExecutionArn    string `json:"executionArn"`
		StateMachineArn string `json:"stateMachineArn"`
		Name            string `json:"name"`
		Input           string `json:"input"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		sfnError(w, http.StatusBadRequest, "SerializationException", err.Error())
		return
	}
	switch action {
	case "DescribeExecution":
		ex := s.Execution(in.ExecutionArn)
		if ex == nil {
			sfnError(w, http.StatusBadRequest, "ExecutionDoesNotExist", "Execution Does Not Exist: '"+in.ExecutionArn+"'")
			return
		}
		writeAmzJSON(w, describe(ex))
	case "StartExecution":
		name := ""
		for n, m := range s.machines {
			if m.arn == in.StateMachineArn {
				name = n
			}
		}
		if name == "" {
			sfnError(w, http.StatusBadRequest, "StateMachineDoesNotExist", "State Machine Does Not Exist: '"+in.StateMachineArn+"'")
			return
		}
		input := in.Input
		if input == "" {
			input = "{}"
		}
		arn, err := s.StartExecution(r.Context(), name, in.Name, json.RawMessage(input))
		switch {
		case errors.Is(err, ErrExecutionExists):
			sfnError(w, http.StatusBadRequest, "ExecutionAlreadyExists", "Execution Already Exists: '"+arn+"'")
		case err != nil && arn == "":
			sfnError(w, http.StatusBadRequest, "InvalidExecutionInput", err.Error())
		case err != nil: // the engine refused it; the execution is recorded as failed
			sfnError(w, http.StatusInternalServerError, "ServiceException", err.Error())
		default:
			writeAmzJSON(w, map[string]any{"executionArn": arn, "startDate": epoch(time.Now())})
		}
	default:
		sfnError(w, http.StatusBadRequest, "UnknownOperationException", "the local hub does not implement "+action)
	}
}

func describe(ex *Execution) map[string]any {
	d := map[string]any{
		"executionArn":    ex.ARN,
		"stateMachineArn": machineArn(ex.Machine),
		"name":            ex.Name,
		"status":          ex.Status,
		"startDate":       epoch(ex.StartDate),
		"input":           string(ex.Input),
		"inputDetails":    map[string]bool{"included": true},
	}
	if !ex.StopDate.IsZero() {
		d["stopDate"] = epoch(ex.StopDate)
	}
	if ex.Status == "SUCCEEDED" {
		d["output"] = string(ex.Output)
		d["outputDetails"] = map[string]bool{"included": true}
	}
	if ex.Error != "" {
		d["error"], d["cause"] = ex.Error, ex.Cause
	}
	return d
}

func epoch(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }

func writeAmzJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	_ = json.NewEncoder(w).Encode(v)
}

func sfnError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": "com.amazonaws.swf.service.v2.model#" + typ, "message": msg})
}
