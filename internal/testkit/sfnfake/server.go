package sfnfake

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// Fault is an answer that replaces StartExecution's or DescribeExecution's:
// an HTTP status and the Step Functions error type ("ThrottlingException",
// "AccessDeniedException").
type Fault struct {
	Status int
	Type   string
}

// Server is a fake that only records: it starts nothing, and answers
// ExecutionAlreadyExists for a name it has seen, as Step Functions does for
// a finished execution or a different input. An execution is RUNNING until
// a test says otherwise ([Server.SetStatus], [Server.Complete]);
// [Server.Add] records one as if an earlier run had started it. Requests
// must be signed. Set its hook fields before the first request; its
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

	mu       sync.Mutex
	execs    map[string]*Execution // by ARN
	order    []string
	calls    map[string]int // by action, of the requests checked
	requests []Request      // every request received
}

var _ Backend = (*Server)(nil)

// NewServer starts a fake on a free port of 127.0.0.1.
func NewServer() *Server {
	s := &Server{execs: map[string]*Execution{}, calls: map[string]int{}}
	h := &Handler{Backend: s, Observe: func(r Request) {
		s.mu.Lock()
		s.requests = append(s.requests, r)
		s.mu.Unlock()
	}}
	s.srv = httptest.NewServer(h)
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

// Calls returns how many signed, well-formed requests of action
// ("StartExecution", "DescribeExecution") the fake answered.
func (s *Server) Calls(action string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[action]
}

// Requests returns every request the fake received, in order, also those
// it refused (unsigned, unknown action, bad body).
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Add records an execution of machineARN named name with status, as if it
// had been started before (a previous run's), and returns it. Its Input is
// "{}"; [Server.SetInput] changes it.
func (s *Server) Add(machineARN, name, status string) Execution {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := &Execution{ARN: ExecutionARN(machineARN, name), Name: name, StateMachineARN: machineARN, Input: "{}",
		Status: status, StartDate: time.Now().Add(-time.Hour)}
	s.execs[e.ARN] = e
	s.order = append(s.order, e.ARN)
	return *e
}

// SetInput sets the input DescribeExecution reports for the execution
// arn; it reports whether there is one.
func (s *Server) SetInput(arn, input string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.execs[arn]
	if ok {
		e.Input = input
	}
	return ok
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

func (s *Server) count(action string) {
	s.mu.Lock()
	s.calls[action]++
	s.mu.Unlock()
}

// StartExecution records a RUNNING execution, after the hooks and Step
// Functions' checks of the ARN, the name and the input.
func (s *Server) StartExecution(_ context.Context, machine, name, input string) (Execution, error) {
	s.count("StartExecution")
	if s.BeforeStart != nil {
		s.BeforeStart(name)
	}
	if s.StartFault != nil {
		if f, ok := s.StartFault(name); ok {
			return Execution{}, &Error{f.Status, f.Type, "fake " + f.Type}
		}
	}
	if !strings.Contains(machine, ":stateMachine:") {
		return Execution{}, &Error{http.StatusBadRequest, "InvalidArn", "Invalid Arn: '" + machine + "'"}
	}
	if name == "" || len(name) > 80 || strings.ContainsAny(name, " <>{}[]?*\"#%\\^|~`$&,;:/") {
		return Execution{}, &Error{http.StatusBadRequest, "InvalidName", "Invalid Name: '" + name + "'"}
	}
	if !json.Valid([]byte(input)) {
		return Execution{}, &Error{http.StatusBadRequest, "InvalidExecutionInput", "Invalid State Machine Execution Input"}
	}
	arn := ExecutionARN(machine, name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.execs[arn]; ok {
		return Execution{}, &Error{http.StatusBadRequest, "ExecutionAlreadyExists", "Execution Already Exists: '" + arn + "'"}
	}
	e := &Execution{ARN: arn, Name: name, StateMachineARN: machine, Input: input, Status: "RUNNING", StartDate: time.Now()}
	s.execs[arn] = e
	s.order = append(s.order, arn)
	return *e, nil
}

// DescribeExecution reports the execution arn, after DescribeFault; it
// asks Complete for the status of a RUNNING one.
func (s *Server) DescribeExecution(_ context.Context, arn string) (Execution, error) {
	s.count("DescribeExecution")
	if s.DescribeFault != nil {
		if f, ok := s.DescribeFault(arn); ok {
			return Execution{}, &Error{f.Status, f.Type, "fake " + f.Type}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.execs[arn]
	if !ok {
		return Execution{}, &Error{http.StatusBadRequest, "ExecutionDoesNotExist", "Execution Does Not Exist: '" + arn + "'"}
	}
	e.describes++
	if s.Complete != nil && e.Status == "RUNNING" {
		if st, errName, cause := s.Complete(*e, e.describes); st != "" {
			e.Status, e.Error, e.Cause = st, errName, cause
		}
	}
	return *e, nil
}
