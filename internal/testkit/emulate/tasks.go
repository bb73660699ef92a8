package emulate

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"benchling-webhook/internal/awserr"
	"benchling-webhook/internal/httprange"
	"benchling-webhook/internal/testkit/testenv"
)

// Identifiers of the emulated resources, as the substitutions name them.
const (
	clusterArn    = "arn:aws:ecs:" + Region + ":" + AccountID + ":cluster/local"
	taskFamily    = "benchling-webhook-local-job"
	containerName = "job"
	connectionArn = "arn:aws:events:" + Region + ":" + AccountID + ":connection/benchling-local/0000"
	queueURL      = "https://sqs." + Region + ".amazonaws.com/" + AccountID + "/local-PackagerQueue"
	// overridesLimit is ECS RunTask's limit on the overrides' JSON.
	overridesLimit = 8192
)

func machineArn(name string) string {
	return fmt.Sprintf("arn:aws:states:%s:%s:stateMachine:%s", Region, AccountID, name)
}

// taskError is a named task failure: the engine throws it with this name,
// so Retry and Catch match it as in AWS.
type taskError struct {
	Name, Cause string
}

func (e *taskError) Error() string { return e.Name + ": " + e.Cause }

type taskRequest struct {
	ExecutionArn string          `json:"executionArn"`
	State        string          `json:"state"`
	Resource     string          `json:"resource"`
	Input        json.RawMessage `json:"input"`
}

func (s *Stack) hubHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /engine/task", func(w http.ResponseWriter, r *http.Request) {
		var req taskRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		out, err := s.runTask(r.Context(), req)
		reply := map[string]any{"output": out}
		if err != nil {
			var te *taskError
			if !errors.As(err, &te) {
				te = &taskError{Name: "States.TaskFailed", Cause: err.Error()}
			}
			reply = map[string]any{"error": te.Name, "cause": te.Cause}
			s.logf("%s %s: %s %s", shortArn(req.ExecutionArn), req.State, te.Name, truncate(te.Cause, 300))
			s.recordTask(req, nil, te)
		} else {
			s.logf("%s %s: ok", shortArn(req.ExecutionArn), req.State)
			s.recordTask(req, out, nil)
		}
		writeJSON(w, http.StatusOK, reply)
	})
	mux.HandleFunc("POST /engine/done", func(w http.ResponseWriter, r *http.Request) {
		var d engineDone
		if err := json.NewDecoder(r.Body).Decode(&d); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.logf("%s: %s %s", shortArn(d.ARN), d.Status, d.Error)
		s.finish(d)
		writeJSON(w, http.StatusOK, map[string]any{})
	})
	mux.Handle("POST /", s.sfnHandler())
	return mux
}

func (s *Stack) runTask(ctx context.Context, req taskRequest) (any, error) {
	if s.opts.BeforeTask != nil {
		s.opts.BeforeTask(req.ExecutionArn, req.State)
	}
	switch req.Resource {
	case "arn:aws:states:::ecs:runTask.sync":
		return s.runECS(ctx, req)
	case "arn:aws:states:::http:invoke":
		return s.runHTTP(ctx, req)
	case "arn:aws:states:::aws-sdk:s3:putObject":
		return s.runPutObject(ctx, req)
	case "arn:aws:states:::aws-sdk:s3:getObject", "arn:aws:states:::aws-sdk:s3:headObject",
		"arn:aws:states:::aws-sdk:s3:deleteObject", "arn:aws:states:::aws-sdk:s3:listObjectsV2":
		return s.runS3(ctx, req)
	case "arn:aws:states:::aws-sdk:sfn:describeExecution":
		return s.runDescribeExecution(req)
	case "arn:aws:states:::sqs:sendMessage":
		return s.runSendMessage(req)
	case "arn:aws:states:::states:startExecution":
		return s.runStartExecution(ctx, req)
	}
	return nil, &taskError{"States.Runtime", "emulate: no local handler for resource " + req.Resource}
}

// ---- ECS

type ecsParams struct {
	LaunchType           string
	Cluster              string
	TaskDefinition       string
	NetworkConfiguration struct {
		AwsvpcConfiguration struct {
			Subnets, SecurityGroups []string
			AssignPublicIp          string
		}
	}
	Overrides struct {
		// Cpu and Memory are the task-level size (CPU units, MiB), ""
		// for the task definition's.
		Cpu, Memory        string
		ContainerOverrides []containerOverride
	}
}

// runECS runs the job binary as the task's container: the override's
// Command as its arguments, the task definition's environment plus the
// override's. It answers like ecs:runTask.sync: the stopped task, or
// States.TaskFailed with the task as Cause when the container exits non-zero.
func (s *Stack) runECS(ctx context.Context, req taskRequest) (any, error) {
	o, rawOverrides, err := checkRunTask(req.Input)
	if err != nil {
		return nil, err
	}
	t := ecsTask{ID: randomID(32)}
	t.ARN = fmt.Sprintf("arn:aws:ecs:%s:%s:task/local/%s", Region, AccountID, t.ID)
	env, shownEnv := s.containerEnv(o)
	res, err := s.runContainer(req, o.Command, env, s.stateTimeout(req))
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.tasks = append(s.tasks, TaskRun{Execution: req.ExecutionArn, State: req.State, TaskArn: t.ARN, Command: o.Command,
		Environment: shownEnv, ExitCode: res.exit, Stdout: res.stdout, Stderr: res.stderr, Duration: res.duration,
		StartedAt: res.created, StoppedAt: res.stopped})
	s.mu.Unlock()
	return taskResult(t, res, rawOverrides)
}

// containerOverride is the one container override the job's tasks carry.
type containerOverride struct {
	Name        string
	Command     []string
	Environment []struct{ Name, Value string }
}

// checkRunTask decodes and checks ecs:runTask's parameters as ECS would:
// Fargate, the stack's cluster and task family, a network configuration,
// and one override, for the job's container, within ECS's size limit. It
// returns that override and the Overrides as sent (echoed in the result).
func checkRunTask(input json.RawMessage) (containerOverride, json.RawMessage, error) {
	var p ecsParams
	if err := strictDecode(input, &p); err != nil {
		return containerOverride{}, nil, &taskError{"ECS.InvalidParameterException", err.Error()}
	}
	var raw struct{ Overrides json.RawMessage }
	_ = json.Unmarshal(input, &raw)
	switch {
	case p.LaunchType != "FARGATE":
		return containerOverride{}, nil, &taskError{"ECS.InvalidParameterException", "LaunchType must be FARGATE"}
	case p.Cluster != clusterArn:
		return containerOverride{}, nil, &taskError{"ECS.ClusterNotFoundException", "Cluster not found: " + p.Cluster}
	case p.TaskDefinition != taskFamily:
		return containerOverride{}, nil, &taskError{"ECS.ClientException", "Unable to find task definition " + p.TaskDefinition}
	case len(p.NetworkConfiguration.AwsvpcConfiguration.Subnets) == 0:
		return containerOverride{}, nil, &taskError{"ECS.InvalidParameterException", "Network Configuration must be provided when networkMode 'awsvpc' is specified."}
	case len(raw.Overrides) > overridesLimit:
		return containerOverride{}, nil, &taskError{"ECS.InvalidParameterException", fmt.Sprintf("Container Overrides length must be at most %d", overridesLimit)}
	case len(p.Overrides.ContainerOverrides) != 1 || p.Overrides.ContainerOverrides[0].Name != containerName:
		return containerOverride{}, nil, &taskError{"ECS.InvalidParameterException", "Override for container named " + containerName + " expected"}
	case !fargateSize(p.Overrides.Cpu, p.Overrides.Memory):
		return containerOverride{}, nil, &taskError{"ECS.ClientException", fmt.Sprintf("No Fargate configuration exists for given values: %s CPU, %s memory.", p.Overrides.Cpu, p.Overrides.Memory)}
	}
	return p.Overrides.ContainerOverrides[0], raw.Overrides, nil
}

// fargateSize reports whether a task-level override is one of Fargate's
// CPU/memory combinations (Linux; both empty: the task definition's
// size), as ECS checks them: https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html#fargate-tasks-size
func fargateSize(cpu, memory string) bool {
	if cpu == "" && memory == "" {
		return true
	}
	mib, err := strconv.Atoi(memory)
	if err != nil || strconv.Itoa(mib) != memory {
		return false
	}
	in := func(lo, hi, step int) bool { return mib >= lo && mib <= hi && (mib-lo)%step == 0 }
	switch cpu {
	case "256":
		return mib == 512 || mib == 1024 || mib == 2048
	case "512":
		return in(1024, 4096, 1024)
	case "1024":
		return in(2048, 8192, 1024)
	case "2048":
		return in(4096, 16384, 1024)
	case "4096":
		return in(8192, 30720, 1024)
	case "8192":
		return in(16384, 61440, 4096)
	case "16384":
		return in(32768, 122880, 8192)
	}
	return false
}

// containerEnv returns the container's environment (the task
// definition's, then the override's) and the override's as [TaskRun]
// shows it, URLs without their query string (a presigned URL's query is a
// credential).
func (s *Stack) containerEnv(o containerOverride) (env []string, shown map[string]string) {
	env = s.taskEnvironment()
	shown = map[string]string{}
	for _, e := range o.Environment {
		env = append(env, e.Name+"="+e.Value)
		shown[e.Name] = e.Value
		if strings.Contains(e.Value, "://") {
			shown[e.Name] = httprange.Redact(e.Value)
		}
	}
	return env, shown
}

// stateTimeout is the Task state's TimeoutSeconds, 60 s if it has none.
func (s *Stack) stateTimeout(req taskRequest) time.Duration {
	timeout := time.Duration(s.machineState(req.ExecutionArn, req.State).TimeoutSeconds) * time.Second
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	return timeout
}

// containerRun is how a container run ended.
type containerRun struct {
	exit             int // 128+signal if a signal ended it
	stdout, stderr   string
	created, stopped time.Time
	duration         time.Duration
}

// runContainer runs the job binary with args and env until it exits. The
// task outlives the engine's request (ECS runs it on its own), but not its
// state's timeout nor the stack: either sends SIGTERM, then SIGKILL after
// ECS's stop timeout. An error means the job could not be run at all.
func (s *Stack) runContainer(req taskRequest, args, env []string, timeout time.Duration) (containerRun, error) {
	runCtx, cancel := context.WithTimeout(s.ctx, timeout+time.Second)
	defer cancel()
	cmd := exec.CommandContext(runCtx, s.opts.JobBinary, args...)
	cmd.SysProcAttr = testenv.ChildProcAttr()
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second // ECS's stopTimeout before SIGKILL
	cmd.Env = env
	cmd.Dir = s.opts.Dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = io.MultiWriter(&stderr, stderrOrDiscard(s.opts.Stderr))
	if d := s.opts.TaskStartDelay; d > 0 {
		// Provisioning (ENI, image pull), as Fargate takes before the container starts.
		select {
		case <-time.After(d):
		case <-runCtx.Done():
			return containerRun{}, &taskError{"ECS.AmazonECSException", "the task was stopped before it started: " + runCtx.Err().Error()}
		}
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return containerRun{}, &taskError{"ECS.AmazonECSException", "start the job: " + err.Error()}
	}
	if !s.trackProc(req.ExecutionArn, cmd.Process, true) {
		_ = cmd.Process.Signal(syscall.SIGTERM) // the execution ended meanwhile
	}
	err := cmd.Wait()
	s.trackProc(req.ExecutionArn, cmd.Process, false)
	res := containerRun{stdout: stdout.String(), stderr: stderr.String(), created: start.UTC()}
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			return containerRun{}, &taskError{"ECS.AmazonECSException", "run the job: " + err.Error()}
		}
		res.exit = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			res.exit = 128 + int(ws.Signal())
		}
	}
	res.stopped = time.Now().UTC()
	res.duration = time.Since(start)
	return res, nil
}

// ecsTask names one task.
type ecsTask struct{ ID, ARN string }

// taskResult is ecs:runTask.sync's answer for the stopped task t: the task
// description, or States.TaskFailed with it as the Cause when the
// container exited non-zero.
func taskResult(t ecsTask, res containerRun, overrides json.RawMessage) (any, error) {
	size := struct{ Cpu, Memory string }{"1024", "2048"} // the task definition's, unless overridden
	_ = json.Unmarshal(overrides, &size)
	task := map[string]any{
		"TaskArn":           t.ARN,
		"ClusterArn":        clusterArn,
		"TaskDefinitionArn": fmt.Sprintf("arn:aws:ecs:%s:%s:task-definition/%s:1", Region, AccountID, taskFamily),
		"LaunchType":        "FARGATE",
		"PlatformVersion":   "1.4.0",
		"Cpu":               size.Cpu,
		"Memory":            size.Memory,
		"Group":             "family:" + taskFamily,
		"StartedBy":         "AWS Step Functions",
		"LastStatus":        "STOPPED",
		"DesiredStatus":     "STOPPED",
		"StopCode":          "EssentialContainerExited",
		"StoppedReason":     "Essential container in task exited",
		"CreatedAt":         res.created.Format(time.RFC3339Nano),
		"StartedAt":         res.created.Format(time.RFC3339Nano),
		"StoppedAt":         res.stopped.Format(time.RFC3339Nano),
		"Overrides":         overrides,
		"Containers": []map[string]any{{
			"ContainerArn": fmt.Sprintf("arn:aws:ecs:%s:%s:container/local/%s/%s", Region, AccountID, t.ID, randomID(8)),
			"TaskArn":      t.ARN,
			"Name":         containerName,
			"LastStatus":   "STOPPED",
			"ExitCode":     res.exit,
		}},
	}
	if res.exit != 0 {
		b, _ := json.Marshal(task)
		return nil, &taskError{"States.TaskFailed", string(b)}
	}
	return task, nil
}

// taskEnvironment is what the task definition gives the container: AWS
// endpoints and credentials for the local services, and the job's settings
// (as the addon's outputs, the manifest's variables and secrets and Copilot
// would).
func (s *Stack) taskEnvironment() []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + s.opts.Dir, "TMPDIR=" + os.TempDir()}
	env = append(env, s.S3.Env()...)
	env = append(env,
		"AWS_ENDPOINT_URL_SFN="+s.HubURL,
		"LOG_FORMAT=json",
		// The manifest's secret.
		"BENCHLING_CLIENT_SECRET="+s.opts.Sandbox.ClientSecret,
		"COPILOT_APPLICATION_NAME=benchling-webhook",
		"COPILOT_ENVIRONMENT_NAME=local",
		"COPILOT_SERVICE_NAME=worker",
	)
	for _, name := range AddonOutputEnv {
		env = append(env, name+"="+s.addonOutput(name))
	}
	if s.opts.AllowedIPs != "" {
		env = append(env, "ALLOWED_IPS="+s.opts.AllowedIPs)
	}
	if s.opts.MaxBody != "" {
		env = append(env, "MAX_BODY="+s.opts.MaxBody)
	}
	return env
}

// AddonOutputEnv lists the environment variables the addon's outputs give
// the worker's tasks (Copilot names each after its output, in SNAKE_CASE).
// internal/deploytest/deploycheck checks it against addons/workflows.yml, so the local
// stack cannot drift from what a deployed task gets.
var AddonOutputEnv = []string{
	"APP_DEFINITION_ID", "ALLOWED_IPS", "CATALOG_HOST", "REGISTRY", "PACKAGE_PREFIX",
	"BENCHLING_CLIENT_ID", "BENCHLING_BASE_URL", "WEBHOOK_STATE_MACHINE_ARN",
	"PACKAGING_STATE_MACHINE_ARN", "WEBHOOK_API_URL", "JWKS_URL", "QUILT_WORKFLOW",
}

// addonOutput is the local value of an addon output's variable.
func (s *Stack) addonOutput(name string) string {
	switch name {
	case "APP_DEFINITION_ID":
		return s.opts.Sandbox.AppDefinitionID
	case "JWKS_URL":
		return s.Benchling.JWKSURL()
	case "ALLOWED_IPS":
		return "0.0.0.0/0,::/0" // the addon's value for "any"
	case "CATALOG_HOST":
		return s.opts.CatalogHost
	case "REGISTRY":
		return s.opts.Bucket
	case "PACKAGE_PREFIX":
		return s.opts.Prefix
	case "BENCHLING_CLIENT_ID":
		return s.opts.Sandbox.ClientID
	case "BENCHLING_BASE_URL":
		return s.Benchling.URL()
	case "WEBHOOK_STATE_MACHINE_ARN":
		return machineArn(Webhook)
	case "PACKAGING_STATE_MACHINE_ARN":
		return machineArn(Packaging)
	case "WEBHOOK_API_URL":
		return s.GatewayURL
	case "QUILT_WORKFLOW":
		return s.opts.QuiltWorkflow
	}
	panic("emulate: no local value for addon output " + name)
}

// trackProc records (running) or forgets a job process of the execution
// arn, so that the end of the execution stops it. It reports false when the
// execution has already ended: the caller must stop the process itself.
func (s *Stack) trackProc(arn string, p *os.Process, running bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !running {
		delete(s.procs[arn], p.Pid)
		if len(s.procs[arn]) == 0 {
			delete(s.procs, arn)
		}
		return true
	}
	if ex := s.executions[arn]; ex == nil || ex.Status != "RUNNING" {
		return false
	}
	if s.procs[arn] == nil {
		s.procs[arn] = map[int]*os.Process{}
	}
	s.procs[arn][p.Pid] = p
	return true
}

func (s *Stack) machineState(arn, state string) struct {
	Type           string
	TimeoutSeconds int
} {
	s.mu.Lock()
	ex := s.executions[arn]
	s.mu.Unlock()
	if ex == nil {
		return struct {
			Type           string
			TimeoutSeconds int
		}{}
	}
	return s.machines[ex.Machine].states[state]
}

// ---- S3

// runPutObject writes Body as Step Functions does: the JSON text of the
// value, so an object is stored as minified JSON and a string with its
// quotes (which is why text is never written this way). IfNoneMatch and
// IfMatch go to S3 as the conditional headers.
func (s *Stack) runPutObject(ctx context.Context, req taskRequest) (any, error) {
	var p struct {
		Bucket, Key, ContentType string
		IfNoneMatch, IfMatch     string
		Body                     json.RawMessage
	}
	if err := strictDecode(req.Input, &p); err != nil {
		return nil, &taskError{"S3.SdkClientException", err.Error()}
	}
	client, err := s.S3.Client(ctx)
	if err != nil {
		return nil, &taskError{"S3.SdkClientException", err.Error()}
	}
	in := &s3.PutObjectInput{Bucket: aws.String(p.Bucket), Key: aws.String(p.Key), Body: bytes.NewReader(p.Body)}
	if p.ContentType != "" {
		in.ContentType = aws.String(p.ContentType)
	}
	if p.IfNoneMatch != "" {
		in.IfNoneMatch = aws.String(p.IfNoneMatch)
	}
	if p.IfMatch != "" {
		in.IfMatch = aws.String(p.IfMatch)
	}
	var out *s3.PutObjectOutput
	if in.IfNoneMatch != nil || in.IfMatch != nil {
		out, err = s.conditionalPut(ctx, client, in)
	} else {
		out, err = client.PutObject(ctx, in)
	}
	if err != nil {
		return nil, s3TaskError(err)
	}
	return map[string]any{"ETag": aws.ToString(out.ETag)}, nil
}

// conditionalPut sends a conditional PutObject as S3 evaluates it. S3
// checks If-None-Match: * against the current version only, so in a
// versioned bucket a key whose current version is a delete marker (a
// released lease) is absent and the write succeeds (S3 User Guide,
// "How to prevent object overwrites with conditional writes"). versitygw
// 1.8 with a versioning directory answers 412 there instead. So when it
// refuses an If-None-Match write, the hub looks: a key that does not
// exist is written without the condition. The hub's conditional puts are
// serialised (s.condMu), and only the hub writes the keys it puts
// conditionally (the packaging lease), so the look and the write are one
// step to every other writer, as S3's check is.
func (s *Stack) conditionalPut(ctx context.Context, client *s3.Client, in *s3.PutObjectInput) (*s3.PutObjectOutput, error) {
	s.condMu.Lock()
	defer s.condMu.Unlock()
	out, err := client.PutObject(ctx, in)
	if err == nil || in.IfNoneMatch == nil || !isPreconditionFailed(err) {
		return out, err
	}
	if _, herr := client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: in.Bucket, Key: in.Key}); herr == nil || !awserr.IsNotFound(herr) {
		return nil, err // it exists (or cannot be looked at): S3's 412 stands
	}
	if _, serr := in.Body.(io.Seeker).Seek(0, io.SeekStart); serr != nil {
		return nil, serr
	}
	retry := *in
	retry.IfNoneMatch = nil
	return client.PutObject(ctx, &retry)
}

// isPreconditionFailed reports S3's 412 answer to a conditional write.
func isPreconditionFailed(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == "PreconditionFailed"
}

// ---- SQS

func (s *Stack) runSendMessage(req taskRequest) (any, error) {
	var p struct {
		QueueUrl    string
		MessageBody json.RawMessage
	}
	if err := strictDecode(req.Input, &p); err != nil {
		return nil, &taskError{"SQS.SdkClientException", err.Error()}
	}
	if p.QueueUrl != queueURL {
		return nil, &taskError{"SQS.QueueDoesNotExistException", "The specified queue does not exist: " + p.QueueUrl}
	}
	body := string(p.MessageBody)
	var str string
	if json.Unmarshal(p.MessageBody, &str) == nil {
		body = str // a string body is sent as is; anything else as its JSON text
	}
	if body == "" || len(body) > 256<<10 {
		return nil, &taskError{"SQS.InvalidParameterValueException", "message body must be 1 to 262144 bytes"}
	}
	id := uuid()
	sum := md5.Sum([]byte(body))
	s.mu.Lock()
	s.queue = append(s.queue, Message{QueueURL: p.QueueUrl, MessageID: id, Body: body, Execution: req.ExecutionArn})
	s.mu.Unlock()
	s.toPackager(body)
	return map[string]any{"MessageId": id, "MD5OfMessageBody": hex.EncodeToString(sum[:])}, nil
}

// ---- Step Functions

func (s *Stack) runStartExecution(ctx context.Context, req taskRequest) (any, error) {
	var p struct {
		StateMachineArn string
		Name            string
		Input           json.RawMessage
	}
	if err := strictDecode(req.Input, &p); err != nil {
		return nil, &taskError{"StepFunctions.InvalidExecutionInputException", err.Error()}
	}
	name := ""
	for n, m := range s.machines {
		if m.arn == p.StateMachineArn {
			name = n
		}
	}
	if name == "" {
		return nil, &taskError{"StepFunctions.StateMachineDoesNotExistException", "State Machine Does Not Exist: '" + p.StateMachineArn + "'"}
	}
	input := p.Input
	var str string
	if json.Unmarshal(p.Input, &str) == nil {
		input = json.RawMessage(str)
	}
	if len(input) == 0 {
		input = json.RawMessage("{}")
	}
	arn, err := s.startExecution(ctx, name, p.Name, input, req.ExecutionArn)
	if errors.Is(err, ErrExecutionExists) {
		return nil, &taskError{"StepFunctions.ExecutionAlreadyExistsException", "Execution Already Exists: '" + arn + "'"}
	}
	if err != nil {
		return nil, &taskError{"StepFunctions.InvalidExecutionInputException", err.Error()}
	}
	return map[string]any{"ExecutionArn": arn, "StartDate": time.Now().UTC().Format(time.RFC3339Nano)}, nil
}

// ---- helpers

func strictDecode(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("invalid parameters: %w", err)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func randomID(n int) string {
	b := make([]byte, (n+1)/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

func uuid() string {
	h := randomID(32)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func shortArn(arn string) string {
	if i := strings.LastIndex(arn, ":execution:"); i >= 0 {
		return arn[i+len(":execution:"):]
	}
	return arn
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
