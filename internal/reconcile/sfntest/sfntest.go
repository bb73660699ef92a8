// Package sfntest is a fake AWS Step Functions endpoint for tests: it
// speaks the awsJson1_0 protocol of StartExecution and DescribeExecution
// well enough for the SDK's client, records every execution, and answers
// ExecutionAlreadyExists for a name it has seen, as Step Functions does
// for a finished execution or a different input. An execution is RUNNING
// until a test says otherwise ([Server.SetStatus], [Server.Complete]), and
// [Server.Add] records one as if an earlier run had started it.
// internal/testkit/emulate runs the real state machines; this fake only records,
// for unit tests.
package sfntest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// Execution is one execution the fake started.
type Execution struct {
	ARN, Name, StateMachineARN string
	// Input is the execution's input as sent.
	Input string
	// Status is RUNNING until Complete says otherwise.
	Status, Error, Cause string
	StartDate            time.Time
	describes            int
}

// Fault is an answer that replaces StartExecution's: an HTTP status and
// the Step Functions error type ("ThrottlingException", "AccessDeniedException").
type Fault struct {
	Status int
	Type   string
}

// Server is the fake. Set its hook fields before the first request; its
// methods are safe for concurrent use. Close it when done.
type Server struct {
	// URL is the endpoint, for AWS_ENDPOINT_URL_SFN or BaseEndpoint.
	URL string
	// BeforeStart, if set, is called with the execution name before a
	// StartExecution is answered (a test can block it there).
	BeforeStart func(name string)
	// StartFault, if set, may fail a StartExecution instead of answering.
	StartFault func(name string) (Fault, bool)
	// Complete, if set, gives an execution's status at its n-th
	// DescribeExecution (from 1); "" keeps it RUNNING.
	Complete func(e Execution, n int) (status, errName, cause string)
	// DescribeFault, if set, may fail a DescribeExecution instead of
	// answering.
	DescribeFault func(arn string) (Fault, bool)

	srv *httptest.Server

	mu    sync.Mutex
	execs map[string]*Execution // by ARN
	order []string
	calls map[string]int // by action
}

// NewServer starts a fake on a free port of 127.0.0.1.
func NewServer() *Server {
	s := &Server{execs: map[string]*Execution{}, calls: map[string]int{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Executions returns copies of the executions started, in order.
func (s *Server) Executions() []Execution {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Execution, 0, len(s.order))
	for _, arn := range s.order {
		out = append(out, *s.execs[arn])
	}
	return out
}

// Calls returns how many requests of action ("StartExecution",
// "DescribeExecution") the fake answered.
func (s *Server) Calls(action string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[action]
}

// Add records an execution of machineARN named name with status, as if it
// had been started before (a previous run's), and returns it. Its Input is
// "{}".
func (s *Server) Add(machineARN, name, status string) Execution {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := &Execution{ARN: ExecutionARN(machineARN, name), Name: name, StateMachineARN: machineARN, Input: "{}",
		Status: status, StartDate: time.Now().Add(-time.Hour)}
	s.execs[e.ARN] = e
	s.order = append(s.order, e.ARN)
	return *e
}

// SetStatus sets the status (and error and cause) DescribeExecution
// reports for the execution arn; it reports whether there is one.
func (s *Server) SetStatus(arn, status, errName, cause string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.execs[arn]
	if ok {
		e.Status, e.Error, e.Cause = status, errName, cause
	}
	return ok
}

// SetStatusOf sets the status of every execution whose name starts with
// prefix ("etr_a-" for all of etr_a's) to status; it returns how many.
func (s *Server) SetStatusOf(prefix, status string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, e := range s.execs {
		if strings.HasPrefix(e.Name, prefix) {
			e.Status = status
			n++
		}
	}
	return n
}

// ExecutionARN is the ARN Step Functions gives the execution name of the
// state machine machineARN.
func ExecutionARN(machineARN, name string) string {
	return strings.Replace(machineARN, ":stateMachine:", ":execution:", 1) + ":" + name
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	action, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "AWSStepFunctions.")
	if r.Method != http.MethodPost || !ok {
		writeError(w, http.StatusBadRequest, "UnknownOperationException", "missing X-Amz-Target")
		return
	}
	if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256") {
		writeError(w, http.StatusBadRequest, "MissingAuthenticationToken", "unsigned request")
		return
	}
	var in struct {
		ExecutionArn    string `json:"executionArn"`
		StateMachineArn string `json:"stateMachineArn"`
		Name            string `json:"name"`
		Input           string `json:"input"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		writeError(w, http.StatusBadRequest, "SerializationException", err.Error())
		return
	}
	s.mu.Lock()
	s.calls[action]++
	s.mu.Unlock()
	switch action {
	case "StartExecution":
		s.start(w, in.StateMachineArn, in.Name, in.Input)
	case "DescribeExecution":
		s.describe(w, in.ExecutionArn)
	default:
		writeError(w, http.StatusBadRequest, "UnknownOperationException", "the fake does not implement "+action)
	}
}

func (s *Server) start(w http.ResponseWriter, machine, name, input string) {
	if s.BeforeStart != nil {
		s.BeforeStart(name)
	}
	if s.StartFault != nil {
		if f, ok := s.StartFault(name); ok {
			writeError(w, f.Status, f.Type, "fake "+f.Type)
			return
		}
	}
	if !strings.Contains(machine, ":stateMachine:") {
		writeError(w, http.StatusBadRequest, "InvalidArn", "Invalid Arn: '"+machine+"'")
		return
	}
	if name == "" || len(name) > 80 || strings.ContainsAny(name, " <>{}[]?*\"#%\\^|~`$&,;:/") {
		writeError(w, http.StatusBadRequest, "InvalidName", "Invalid Name: '"+name+"'")
		return
	}
	if !json.Valid([]byte(input)) {
		writeError(w, http.StatusBadRequest, "InvalidExecutionInput", "Invalid State Machine Execution Input")
		return
	}
	arn := ExecutionARN(machine, name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.execs[arn]; ok {
		writeError(w, http.StatusBadRequest, "ExecutionAlreadyExists", "Execution Already Exists: '"+arn+"'")
		return
	}
	e := &Execution{ARN: arn, Name: name, StateMachineARN: machine, Input: input, Status: "RUNNING", StartDate: time.Now()}
	s.execs[arn] = e
	s.order = append(s.order, arn)
	writeJSON(w, map[string]any{"executionArn": arn, "startDate": epoch(e.StartDate)})
}

func (s *Server) describe(w http.ResponseWriter, arn string) {
	if s.DescribeFault != nil {
		if f, ok := s.DescribeFault(arn); ok {
			writeError(w, f.Status, f.Type, "fake "+f.Type)
			return
		}
	}
	s.mu.Lock()
	e, ok := s.execs[arn]
	if !ok {
		s.mu.Unlock()
		writeError(w, http.StatusBadRequest, "ExecutionDoesNotExist", "Execution Does Not Exist: '"+arn+"'")
		return
	}
	e.describes++
	if s.Complete != nil && e.Status == "RUNNING" {
		if st, errName, cause := s.Complete(*e, e.describes); st != "" {
			e.Status, e.Error, e.Cause = st, errName, cause
		}
	}
	d := map[string]any{
		"executionArn": e.ARN, "stateMachineArn": e.StateMachineARN, "name": e.Name,
		"status": e.Status, "startDate": epoch(e.StartDate), "input": e.Input,
	}
	if e.Status != "RUNNING" {
		d["stopDate"] = epoch(time.Now())
	}
	if e.Error != "" {
		d["error"], d["cause"] = e.Error, e.Cause
	}
	s.mu.Unlock()
	writeJSON(w, d)
}

func epoch(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.Header().Set("X-Amzn-Errortype", typ)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": "com.amazonaws.swf.service.v2.model#" + typ, "message": msg})
}
