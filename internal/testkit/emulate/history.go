package emulate

import (
	"encoding/json"
	"time"
)

// TaskEvent is what Step Functions' execution history records of one Task
// state's call besides the state's own input and output (which
// [Execution.Events] has): the resolved parameters (TaskScheduled), and the
// raw result, before ResultSelector (TaskSucceeded, "the full JSON response
// from a resource"), or the error and cause (TaskFailed).
type TaskEvent struct {
	Execution, State, Resource string
	Parameters                 json.RawMessage
	Output                     json.RawMessage // nil on failure
	Error, Cause               string
	At                         time.Time // when the hub answered
}

// TaskEvents returns the task events of every execution so far, in order.
func (s *Stack) TaskEvents() []TaskEvent {
	s.histMu.Lock()
	defer s.histMu.Unlock()
	return append([]TaskEvent(nil), s.history...)
}

// recordTask adds one task call to the history.
func (s *Stack) recordTask(req taskRequest, out any, te *taskError) {
	ev := TaskEvent{Execution: req.ExecutionArn, State: req.State, Resource: req.Resource, Parameters: req.Input, At: time.Now().UTC()}
	if te != nil {
		ev.Error, ev.Cause = te.Name, te.Cause
	} else if b, err := json.Marshal(out); err == nil {
		ev.Output = b
	}
	s.histMu.Lock()
	defer s.histMu.Unlock()
	s.history = append(s.history, ev)
}
