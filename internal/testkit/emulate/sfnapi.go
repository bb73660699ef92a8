package emulate

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"benchling-webhook/internal/testkit/sfnfake"
)

// sfnHandler answers the Step Functions API calls the job makes
// (DescribeExecution, StartExecution) from the stack's executions, on the
// protocol of [sfnfake.Handler]. Requests are not authenticated.
func (s *Stack) sfnHandler() http.Handler {
	return &sfnfake.Handler{Backend: sfnBackend{s}, AllowUnsigned: true}
}

// sfnBackend is the stack as an [sfnfake.Backend]: StartExecution runs on
// the engine.
type sfnBackend struct{ s *Stack }

var _ sfnfake.Backend = sfnBackend{}

func (b sfnBackend) StartExecution(ctx context.Context, machineARN, name, input string) (sfnfake.Execution, error) {
	machine := ""
	for n, m := range b.s.machines {
		if m.arn == machineARN {
			machine = n
		}
	}
	if machine == "" {
		return sfnfake.Execution{}, &sfnfake.Error{Status: http.StatusBadRequest, Type: "StateMachineDoesNotExist",
			Message: "State Machine Does Not Exist: '" + machineARN + "'"}
	}
	if input == "" {
		input = "{}"
	}
	arn, err := b.s.StartExecution(ctx, machine, name, json.RawMessage(input))
	switch {
	case errors.Is(err, ErrExecutionExists):
		return sfnfake.Execution{}, &sfnfake.Error{Status: http.StatusBadRequest, Type: "ExecutionAlreadyExists",
			Message: "Execution Already Exists: '" + arn + "'"}
	case err != nil && arn == "":
		return sfnfake.Execution{}, &sfnfake.Error{Status: http.StatusBadRequest, Type: "InvalidExecutionInput", Message: err.Error()}
	case err != nil: // the engine refused it; the execution is recorded as failed
		return sfnfake.Execution{}, &sfnfake.Error{Status: http.StatusInternalServerError, Type: "ServiceException", Message: err.Error()}
	}
	return sfnfake.Execution{ARN: arn, StartDate: time.Now()}, nil
}

func (b sfnBackend) DescribeExecution(_ context.Context, arn string) (sfnfake.Execution, error) {
	ex := b.s.Execution(arn)
	if ex == nil {
		return sfnfake.Execution{}, &sfnfake.Error{Status: http.StatusBadRequest, Type: "ExecutionDoesNotExist",
			Message: "Execution Does Not Exist: '" + arn + "'"}
	}
	return sfnfake.Execution{
		ARN: ex.ARN, Name: ex.Name, StateMachineARN: machineArn(ex.Machine), Input: string(ex.Input),
		Status: ex.Status, Error: ex.Error, Cause: ex.Cause, Output: string(ex.Output),
		StartDate: ex.StartDate, StopDate: ex.StopDate,
	}, nil
}
