// Package emulate runs the whole workflow locally: the real state machines
// on aws-local-stepfunctions and a Go hub playing the AWS services they call
// (`make run`, the e2e suite). Design: docs/testkit.md#emulate-the-local-stack.
package emulate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"benchling-webhook/internal/testkit/quiltstub"
	"benchling-webhook/internal/testkit/s3local"
	"benchling-webhook/internal/testkit/sandbox"
	"benchling-webhook/internal/testkit/testenv"
)

// Names of the three state machines, as used by [Stack.StartExecution].
const (
	Webhook   = "webhook"
	Packaging = "packaging"
	// Canvas is the canvas status machine (statemachine/canvas.asl.json).
	Canvas = "canvas"
)

// Fixed identifiers of the emulated account.
const (
	Region    = "us-east-1"
	AccountID = "000000000000"
)

// Options configures [Start]. Dir and JobBinary are required.
type Options struct {
	// Dir holds the servers' files and the job's temporary files.
	Dir string
	// RepoRoot is the repository root (statemachine/, tools/node/); "" means
	// found from the working directory.
	RepoRoot string
	// JobBinary is the built job binary run for ecs:runTask.sync.
	JobBinary string
	// Bucket, Prefix, CatalogHost: where packages go and how they are linked.
	Bucket, Prefix, CatalogHost string
	// QuiltWorkflow is the quilt-workflow setting (the packaging machine's
	// substitution and job export's QUILT_WORKFLOW); "" means "none".
	QuiltWorkflow string
	// ExportFirstPollSeconds, ExportMaxPollSeconds and ExportTimeoutSeconds
	// are the packaging machine's export poll settings (defaults 1, the
	// first, and 60); with WaitMs set, a poll waits WaitMs.
	ExportFirstPollSeconds, ExportMaxPollSeconds, ExportTimeoutSeconds int
	// StatusTimeoutSeconds is the canvas machine's wait for a revision
	// after "sent" (default 900), as its canvases say it. The wait itself
	// lasts StatusWaitMs.
	StatusTimeoutSeconds int
	// StatusWaitMs is how long that wait lasts on this stack (default
	// WaitMs): long enough, a revision arrives before "still waiting".
	StatusWaitMs int
	// WaitMs replaces every Wait state's duration (default 50 ms; negative:
	// the states' own durations, for measurements); RetryMs every retry
	// interval (default 20 ms), so tests do not sleep for minutes.
	WaitMs, RetryMs int
	// TaskStartDelay is how long each ecs:runTask.sync waits before its
	// container starts, as Fargate takes to provision a task (ENI, image
	// pull); default 0. See docs/performance.md, "Webhook to Quilt message".
	TaskStartDelay time.Duration
	// AllowedIPs is the verify task's ALLOWED_IPS ("" = all).
	AllowedIPs string
	// MaxBody is the verify task's MAX_BODY ("" = the job's default).
	MaxBody string
	// Sandbox configures the Benchling sandbox (credentials and app ids
	// are filled in when empty).
	Sandbox sandbox.Options
	// Stderr receives the servers' and the job's diagnostics; nil discards them.
	Stderr io.Writer
	// Logf, when set, gets one line per task the hub runs.
	Logf func(format string, args ...any)
	// BeforeTask, when set, is called before the hub runs each Task state
	// (and may block, to order one execution's step against another's).
	BeforeTask func(executionArn, state string)
	// EventRules is the template whose AWS::Events::Rule resources the
	// local event bus runs ("" means addons/workflows.yml).
	EventRules string
}

// Stack is the running local stack. Its methods are safe for concurrent use.
type Stack struct {
	S3        *s3local.Server
	Benchling *sandbox.Server
	// GatewayURL is the local API Gateway ("http://127.0.0.1:PORT"); POST
	// /, /event, /canvas or /lifecycle with Benchling's headers.
	GatewayURL string
	// HubURL is the emulated AWS endpoint (Step Functions JSON API).
	HubURL string

	opts     Options
	ctx      context.Context // cancelled by Close: stops the job processes
	cancel   context.CancelFunc
	settings map[string]string
	machines map[string]machine // by name
	engine   *engine
	hub      *http.Server
	gateway  *http.Server
	client   *oauthClient

	mu         sync.Mutex
	condMu     sync.Mutex            // serialises the hub's conditional S3 writes (conditionalPut)
	executions map[string]*Execution // by ARN
	order      []string
	queue      []Message
	tasks      []TaskRun
	procs      map[string]map[int]*os.Process // running job processes by execution ARN
	busEvents  []BusEvent

	histMu  sync.Mutex
	history []TaskEvent // TaskEvents

	rules    []Rule              // the local event bus (eventbus.go)
	packager *quiltstub.Packager // the Quilt packaging engine stand-in (quilt.go)
}

type machine struct {
	name, arn  string
	definition json.RawMessage
	states     map[string]struct {
		Type           string
		TimeoutSeconds int
	}
}

// Execution is one state machine run.
type Execution struct {
	ARN, Name, Machine string
	Input              json.RawMessage
	StartDate          time.Time
	StopDate           time.Time
	// Status is RUNNING, SUCCEEDED, FAILED, TIMED_OUT or ABORTED.
	Status string
	// Output (on success), or Error and Cause (otherwise).
	Output       json.RawMessage
	Error, Cause string
	// Events is the engine's event log (state entered/exited, retries, catches).
	Events []json.RawMessage
	// Parent is the ARN of the execution that started this one, if any.
	Parent string
	done   chan struct{}
}

// Message is one message sent to the packager queue.
type Message struct {
	QueueURL, MessageID string
	Body                string
	// Execution is the ARN of the execution that sent it.
	Execution string
}

// TaskRun records one ecs:runTask.sync: the job's command, its overrides'
// environment (URLs without their query string: a presigned URL's query is
// a credential), exit code and output.
type TaskRun struct {
	Execution, State, TaskArn string
	Command                   []string
	Environment               map[string]string
	ExitCode                  int
	Stdout, Stderr            string
	Duration                  time.Duration
	// StartedAt and StoppedAt are when the container started and ended.
	StartedAt, StoppedAt time.Time
}

// JobEnv returns the environment the worker's tasks get on this stack
// (AWS endpoints and credentials, the addon's outputs, the client secret),
// for running the job binary directly, as the schedule or `copilot job
// run` would.
func (s *Stack) JobEnv() []string { return s.taskEnvironment() }

// Settings returns the DefinitionSubstitutions used for the local stack.
func (s *Stack) Settings() map[string]string { return s.settings }

// Start starts the S3 server, the Benchling sandbox, the engine, the hub
// and the gateway. Call Close to stop them.
func Start(ctx context.Context, opts Options) (st *Stack, err error) {
	if opts.Dir == "" || opts.JobBinary == "" {
		return nil, errors.New("emulate: Options.Dir and Options.JobBinary are required")
	}
	if opts.RepoRoot == "" {
		if opts.RepoRoot, err = testenv.RepoRoot(); err != nil {
			return nil, err
		}
	}
	setDefaults(&opts)
	node, module, err := NodeTools(opts.RepoRoot)
	if err != nil {
		return nil, err
	}
	s := &Stack{opts: opts, executions: map[string]*Execution{}, procs: map[string]map[int]*os.Process{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	s3bin, err := s3local.FindBinary()
	if err != nil {
		return nil, fmt.Errorf("emulate: %w", err)
	}
	if s.S3, err = s3local.Start(ctx, s3local.Options{Binary: s3bin, Dir: filepath.Join(opts.Dir, "s3"), Stderr: opts.Stderr}); err != nil {
		return nil, fmt.Errorf("emulate: %w", err)
	}
	if err := s.S3.CreateBucket(ctx, opts.Bucket); err != nil {
		return nil, fmt.Errorf("emulate: %w", err)
	}
	if s.Benchling, err = sandbox.Start(opts.Sandbox); err != nil {
		return nil, fmt.Errorf("emulate: start Benchling sandbox: %w", err)
	}
	s.client = newOAuthClient(s.Benchling.URL()+"/api/v2/token", opts.Sandbox.ClientID, opts.Sandbox.ClientSecret)

	hubLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.HubURL = "http://" + hubLn.Addr().String()
	s.hub = s.newServer(s.hubHandler())
	go func() { _ = s.hub.Serve(hubLn) }()

	gwLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.GatewayURL = "http://" + gwLn.Addr().String()
	gw, err := s.gatewayHandler()
	if err != nil {
		return nil, err
	}
	s.gateway = s.newServer(gw)
	go func() { _ = s.gateway.Serve(gwLn) }()

	s.settings = map[string]string{
		"BenchlingBaseURL":         s.Benchling.URL(),
		"BenchlingConnectionArn":   connectionArn,
		"ClusterArn":               clusterArn,
		"TaskDefinitionFamily":     taskFamily,
		"ContainerName":            containerName,
		"Subnets":                  "subnet-0local1,subnet-0local2",
		"SecurityGroups":           "sg-0local",
		"AssignPublicIp":           "DISABLED",
		"BucketName":               opts.Bucket,
		"PackagePrefix":            opts.Prefix,
		"CatalogHost":              opts.CatalogHost,
		"PackagingStateMachineArn": machineArn(Packaging),
		"PackagerQueueUrl":         queueURL,
		"ExportFirstPollSeconds":   strconv.Itoa(opts.ExportFirstPollSeconds),
		"ExportMaxPollSeconds":     strconv.Itoa(opts.ExportMaxPollSeconds),
		"ExportTimeoutSeconds":     strconv.Itoa(opts.ExportTimeoutSeconds),
		"QuiltWorkflow":            opts.QuiltWorkflow,
		"CanvasStateMachineArn":    machineArn(Canvas),
		"StatusTimeoutSeconds":     strconv.Itoa(opts.StatusTimeoutSeconds),
	}
	s.machines = map[string]machine{}
	for _, name := range []string{Webhook, Packaging, Canvas} {
		m, err := loadMachine(filepath.Join(opts.RepoRoot, "statemachine", name+".asl.json"), name, s.settings)
		if err != nil {
			return nil, err
		}
		s.machines[name] = m
	}
	if err := s.startQuilt(ctx); err != nil {
		return nil, err
	}
	if s.engine, err = startEngine(ctx, engineOptions{
		dir: opts.Dir, node: node, module: module, hubURL: s.HubURL, stderr: opts.Stderr, idle: engineIdle,
	}); err != nil {
		return nil, err
	}
	return s, nil
}

// newServer returns the hub's or the gateway's server. It sets no
// deadline at all: a connection stays open until its client closes it, so
// a client never sends a request on a connection the server is closing.
// Not IdleTimeout (nor ReadTimeout, which it would default to), and not
// ReadHeaderTimeout: net/http arms that one as it accepts a connection,
// before the first request's bytes arrive, so a client that connects and
// writes late (the engine's event loop stalls for seconds under load; Go's
// transport keeps a connection it dialed for a request another connection
// served) finds the connection closed ("fetch failed": UND_ERR_SOCKET
// "other side closed"). Its clients are Go's default transport and the AWS
// SDK's (idle 90 s) and the engine's fetch (undici, 4 s). See
// docs/architecture.md, "Local stack: connection lifetimes"; Close closes
// what is left.
func (s *Stack) newServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h}
}

func setDefaults(o *Options) {
	if o.Bucket == "" {
		o.Bucket = "quilt-local"
	}
	if o.Prefix == "" {
		o.Prefix = "benchling"
	}
	if o.CatalogHost == "" {
		o.CatalogHost = "catalog.example.com"
	}
	if o.QuiltWorkflow == "" {
		o.QuiltWorkflow = "none" // SSM cannot hold "": configure.sh writes none
	}
	if o.ExportFirstPollSeconds == 0 {
		o.ExportFirstPollSeconds = 1
	}
	if o.ExportMaxPollSeconds == 0 {
		// With WaitMs, a wait takes WaitMs however much it counts towards
		// ExportTimeoutSeconds: doubling waits would reach the timeout
		// after a few quick polls. Tests of the backoff set both.
		o.ExportMaxPollSeconds = o.ExportFirstPollSeconds
	}
	if o.ExportTimeoutSeconds == 0 {
		o.ExportTimeoutSeconds = 60
	}
	if o.StatusTimeoutSeconds == 0 {
		o.StatusTimeoutSeconds = 900
	}
	if o.WaitMs == 0 {
		o.WaitMs = 50
	}
	if o.StatusWaitMs == 0 {
		o.StatusWaitMs = o.WaitMs
	}
	if o.RetryMs == 0 {
		o.RetryMs = 20
	}
	if o.Sandbox.ClientID == "" {
		o.Sandbox.ClientID = "local-client"
	}
	if o.Sandbox.ClientSecret == "" {
		o.Sandbox.ClientSecret = randomID(24)
	}
	if o.Sandbox.AppDefinitionID == "" {
		o.Sandbox.AppDefinitionID = "appdef_local"
	}
	if o.Sandbox.AppID == "" {
		o.Sandbox.AppID = "app_local"
	}
}

var placeholder = regexp.MustCompile(`\$\{(\w+)\}`)

// Substitute replaces every ${Name} in an ASL definition as CloudFormation's
// DefinitionSubstitutions do, and fails on a placeholder without a value.
func Substitute(def []byte, values map[string]string) ([]byte, error) {
	var missing []string
	out := placeholder.ReplaceAllFunc(def, func(m []byte) []byte {
		name := string(m[2 : len(m)-1])
		v, ok := values[name]
		if !ok {
			missing = append(missing, name)
			return m
		}
		return []byte(v)
	})
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, fmt.Errorf("emulate: no value for placeholders %s", strings.Join(missing, ", "))
	}
	return out, nil
}

func loadMachine(path, name string, values map[string]string) (machine, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return machine{}, fmt.Errorf("emulate: read state machine: %w", err)
	}
	def, err := Substitute(raw, values)
	if err != nil {
		return machine{}, fmt.Errorf("emulate: %s: %w", path, err)
	}
	m := machine{name: name, arn: machineArn(name), definition: def}
	var parsed struct {
		States map[string]struct {
			Type           string
			TimeoutSeconds int
		}
	}
	if err := json.Unmarshal(def, &parsed); err != nil {
		return machine{}, fmt.Errorf("emulate: parse %s: %w", path, err)
	}
	m.states = parsed.States
	return m, nil
}

// StartExecution starts the named machine ([Webhook], [Packaging] or [Canvas]) with
// input. name "" means a generated one; a name already used answers
// [ErrExecutionExists] with the existing execution's ARN.
func (s *Stack) StartExecution(ctx context.Context, machineName, name string, input json.RawMessage) (string, error) {
	return s.startExecution(ctx, machineName, name, input, "")
}

// ErrExecutionExists is returned for a second execution with the same name.
var ErrExecutionExists = errors.New("ExecutionAlreadyExists")

func (s *Stack) startExecution(ctx context.Context, machineName, name string, input json.RawMessage, parent string) (string, error) {
	m, ok := s.machines[machineName]
	if !ok {
		return "", fmt.Errorf("emulate: no state machine %q", machineName)
	}
	if name == "" {
		name = randomID(16)
	}
	if !ValidExecutionName(name) {
		return "", fmt.Errorf("emulate: invalid execution name %q", name)
	}
	if len(input) > 256<<10 {
		return "", fmt.Errorf("emulate: execution input is %d bytes, over the 262144-byte limit", len(input))
	}
	if !json.Valid(input) {
		return "", errors.New("emulate: execution input is not JSON")
	}
	arn := fmt.Sprintf("arn:aws:states:%s:%s:execution:%s:%s", Region, AccountID, machineName, name)
	s.mu.Lock()
	if _, dup := s.executions[arn]; dup {
		s.mu.Unlock()
		return arn, ErrExecutionExists
	}
	ex := &Execution{ARN: arn, Name: name, Machine: machineName, Input: input, StartDate: time.Now().UTC(),
		Status: "RUNNING", Parent: parent, done: make(chan struct{})}
	s.executions[arn] = ex
	s.order = append(s.order, arn)
	s.mu.Unlock()
	context := map[string]any{
		"Execution": map[string]any{"Id": arn, "Name": name, "StartTime": ex.StartDate.Format(time.RFC3339Nano),
			"RoleArn": fmt.Sprintf("arn:aws:iam::%s:role/%s-role", AccountID, machineName)},
		"StateMachine": map[string]any{"Id": m.arn, "Name": machineName},
	}
	err := s.engine.post(ctx, "/start", map[string]any{
		"arn": arn, "definition": m.definition, "input": input, "context": context,
		"waitMs": waitMs(s.opts.WaitMs), "waitStates": s.waitStates(machineName), "retryMs": s.opts.RetryMs,
	})
	if err != nil {
		s.finish(engineDone{ARN: arn, Status: "FAILED", Error: "States.Runtime", Cause: err.Error()})
		return arn, err
	}
	return arn, nil
}

// waitMs is the engine's Wait override: none (the states' own durations)
// for a negative Options.WaitMs.
func waitMs(ms int) any {
	if ms < 0 {
		return nil
	}
	return ms
}

// waitStates returns the Wait states of machine whose local duration is
// not WaitMs: the canvas machine's wait for a revision (StatusWaitMs).
func (s *Stack) waitStates(machineName string) map[string]int {
	if machineName != Canvas || s.opts.StatusWaitMs < 0 {
		return nil
	}
	return map[string]int{"WaitForRevision": s.opts.StatusWaitMs}
}

// ValidExecutionName applies Step Functions' rules: 1–80 characters, none
// of whitespace, <>{}[]?*"#%\^|~`$&,;:/ or control characters.
func ValidExecutionName(n string) bool {
	if n == "" || len([]rune(n)) > 80 {
		return false
	}
	for _, r := range n {
		if r <= 0x20 || (r >= 0x7f && r <= 0x9f) || strings.ContainsRune("<>{}[]?*\"#%\\^|~`$&,;:/", r) {
			return false
		}
	}
	return true
}

// Wait blocks until the execution ends (or ctx is done) and returns it.
func (s *Stack) Wait(ctx context.Context, arn string) (*Execution, error) {
	s.mu.Lock()
	ex, ok := s.executions[arn]
	s.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("emulate: no execution %s", arn)
	}
	select {
	case <-ex.done:
		return s.Execution(arn), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("emulate: wait for %s: %w", arn, context.Cause(ctx))
	}
}

// Execution returns a copy of the execution's current state, or nil.
func (s *Stack) Execution(arn string) *Execution {
	s.mu.Lock()
	defer s.mu.Unlock()
	ex, ok := s.executions[arn]
	if !ok {
		return nil
	}
	c := *ex
	c.Events = append([]json.RawMessage(nil), ex.Events...)
	return &c
}

// Executions returns copies of every execution, in start order.
func (s *Stack) Executions() []*Execution {
	s.mu.Lock()
	arns := append([]string(nil), s.order...)
	s.mu.Unlock()
	out := make([]*Execution, 0, len(arns))
	for _, a := range arns {
		out = append(out, s.Execution(a))
	}
	return out
}

// Children returns the executions started by the execution arn.
func (s *Stack) Children(arn string) []*Execution {
	var out []*Execution
	for _, ex := range s.Executions() {
		if ex.Parent == arn {
			out = append(out, ex)
		}
	}
	return out
}

// WaitAll waits for every execution started so far, and for those they
// start, to end.
func (s *Stack) WaitAll(ctx context.Context) error {
	for {
		pending := ""
		for _, ex := range s.Executions() {
			if ex.Status == "RUNNING" {
				pending = ex.ARN
				break
			}
		}
		if pending == "" {
			return nil
		}
		if _, err := s.Wait(ctx, pending); err != nil {
			return err
		}
	}
}

// Messages returns the messages sent to the packager queue so far.
func (s *Stack) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.queue...)
}

// TaskRuns returns the ECS tasks run so far.
func (s *Stack) TaskRuns() []TaskRun {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]TaskRun(nil), s.tasks...)
}

type engineDone struct {
	ARN    string            `json:"arn"`
	Status string            `json:"status"`
	Output json.RawMessage   `json:"output"`
	Error  string            `json:"error"`
	Cause  string            `json:"cause"`
	Events []json.RawMessage `json:"events"`
}

func (s *Stack) finish(d engineDone) {
	s.mu.Lock()
	ex, ok := s.executions[d.ARN]
	if !ok || ex.Status != "RUNNING" {
		s.mu.Unlock()
		return
	}
	ex.Status, ex.Output, ex.Error, ex.Cause, ex.Events = d.Status, d.Output, d.Error, d.Cause, d.Events
	ex.StopDate = time.Now().UTC()
	procs := s.procs[d.ARN]
	delete(s.procs, d.ARN)
	s.mu.Unlock()
	// Like Step Functions stopping the ECS tasks of an aborted execution.
	for _, p := range procs {
		_ = p.Signal(syscall.SIGTERM)
	}
	close(ex.done)
}

// Close stops everything Start started; job processes still running get
// SIGTERM, as ECS stops a task.
func (s *Stack) Close() {
	s.cancel()
	s.stopQuilt()
	if s.engine != nil {
		s.engine.close()
	}
	for _, srv := range []*http.Server{s.gateway, s.hub} {
		if srv != nil {
			_ = srv.Close()
		}
	}
	if s.Benchling != nil {
		_ = s.Benchling.Close()
	}
	if s.S3 != nil {
		_ = s.S3.Close()
	}
}

func (s *Stack) logf(format string, args ...any) {
	if s.opts.Logf != nil {
		s.opts.Logf(format, args...)
	}
}
