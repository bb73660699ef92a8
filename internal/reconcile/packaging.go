package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"benchling-webhook/internal/exitcode"
	"benchling-webhook/internal/quiltpkg"
)

// Message types of the packaging input's message (the package's
// input.json), next to the webhook's own ("v2.entry.updated.fields", …).
const (
	// MessageReconcile marks a package started by job reconcile.
	MessageReconcile = "reconcile"
	// MessageManual marks a package started by an operator (job package),
	// as in docs/operations.md.
	MessageManual = "manual"
)

// MaxNameLen is Step Functions' limit on an execution name.
const MaxNameLen = 80

// nameTimeLayout is the modifiedAt part of an execution name: UTC to the
// microsecond, with no characters Step Functions refuses (20250306T232538693042Z).
const nameTimeLayout = "20060102T150405.000000Z"

// idempotentSkew: a StartExecution answer whose startDate is older than
// the call by more than this is Step Functions returning an execution
// already running with the same name and input (it does that instead of
// ExecutionAlreadyExists), not a new one.
const idempotentSkew = 10 * time.Second

// ExecutionName is the name of the packaging execution for entity as
// modified at modifiedAt, "etr_abc-20250306T232538693042Z": the same
// version always gets the same name, so Step Functions refuses to start it
// twice (for 90 days, how long it remembers a name). suffix, if not empty,
// is appended after a dash (a re-run by hand). Characters other than
// letters, digits, '_' and '-' become '_', and a name that would be longer
// than [MaxNameLen] keeps the start of the id and a hash of the whole.
func ExecutionName(entity string, modifiedAt time.Time, suffix string) string {
	tail := strings.Replace(modifiedAt.UTC().Format(nameTimeLayout), ".", "", 1)
	if suffix != "" {
		tail += "-" + suffix
	}
	id := strings.Map(func(r rune) rune {
		if r < 128 && (r == '_' || r == '-' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9') {
			return r
		}
		return '_'
	}, entity)
	room := MaxNameLen - 1 - len(tail)
	if id != entity || len(id) > room {
		h := fnv.New32a()
		_, _ = h.Write([]byte(entity)) // hash writes never fail
		sum := fmt.Sprintf("%08x", h.Sum32())
		id = id[:min(len(id), room-1-len(sum))] + "-" + sum
	}
	return id + "-" + tail
}

// ExecutionAPI is the part of the Step Functions client a [Packager]
// uses: StartExecution, and DescribeExecution for a name that is taken.
type ExecutionAPI interface {
	StartExecution(ctx context.Context, in *sfn.StartExecutionInput, optFns ...func(*sfn.Options)) (*sfn.StartExecutionOutput, error)
	DescribeExecution(ctx context.Context, in *sfn.DescribeExecutionInput, optFns ...func(*sfn.Options)) (*sfn.DescribeExecutionOutput, error)
}

var _ ExecutionAPI = (*sfn.Client)(nil)

// MaxRestarts bounds the executions started again for one version after
// its execution ended without a package: NAME-r1 to NAME-r5.
const MaxRestarts = 5

// ErrRestartLimit means that a version's execution and its
// [MaxRestarts] restarts all ended without a package: starting it again
// would most likely fail the same way (exit 1).
var ErrRestartLimit = exitcode.NewSentinel("reconcile: the version's execution and its restarts all ended without a package", exitcode.Internal)

// Packager starts packaging executions: the packaging state machine's
// input for one entry, as the webhook machine builds it. Its fields must
// not change once it is in use; it is safe for concurrent use when its
// client is.
type Packager struct {
	// Client starts the executions, and describes the ones whose name is
	// taken (the task role needs states:StartExecution on the machine and
	// states:DescribeExecution on its executions).
	Client ExecutionAPI
	// StateMachineARN is the packaging state machine.
	StateMachineARN string
	// Registry is the bucket the packages go to.
	Registry string
	// Prefix is the package name prefix: entity e is packaged as
	// <Prefix>/<e>.
	Prefix string
	// BaseURL is the Benchling tenant's URL (the input's baseURL).
	BaseURL string
	// Pacer, if set, spaces the StartExecution calls: each waits its turn.
	Pacer *Pacer
	// CallTimeout, if set, detaches each Step Functions call from the
	// cancellation of Start's context and bounds it (the SDK's retries
	// included) instead: a call once made is let finish, so an execution
	// is started or it is not, never unknown. Start makes no further call
	// once the context has ended. Zero: the calls end with the context.
	CallTimeout time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Target is one entry to package.
type Target struct {
	// Entity is the entry id.
	Entity string
	// ModifiedAt is the version: the entry's modifiedAt.
	ModifiedAt time.Time
	// MessageType is the input message's type ([MessageReconcile],
	// [MessageManual]).
	MessageType string
	// NameSuffix, if set, is appended to the execution name (see
	// [ExecutionName]), so the same version can be packaged again. An
	// execution of that name that already exists is reported as already
	// started, whatever its status.
	NameSuffix string
	// RestartSucceeded says that the version's package is known to be
	// stale or missing (job reconcile checked it), so that an execution of
	// it that SUCCEEDED did not leave a package either and is started
	// again. Without it such an execution counts as already started.
	RestartSucceeded bool
}

// Started is the outcome of [Packager.Start].
type Started struct {
	// Name and ARN name the execution: the new one, or the one that was
	// already running.
	Name, ARN string
	// AlreadyStarted is true when nothing new was started: an execution of
	// the version is still running (or, without
	// [Target.RestartSucceeded], SUCCEEDED).
	AlreadyStarted bool
	// Restarted is true when a new execution was started, named
	// NAME-rN, because the version's earlier ones ended without a package.
	Restarted bool
	// PreviousStatus is the status of the version's last earlier
	// execution, when its name was taken: FAILED, SUCCEEDED, RUNNING, ….
	PreviousStatus string
}

// packagingInput is the packaging machine's input
// (statemachine/packaging.asl.json).
type packagingInput struct {
	Entity      string  `json:"entity"`
	PackageName string  `json:"packageName"`
	Registry    string  `json:"registry"`
	BaseURL     string  `json:"baseURL"`
	Message     message `json:"message"`
	EventTime   string  `json:"eventTime"`
}

// message becomes the package's input.json.
type message struct {
	Type       string `json:"type"`
	ResourceID string `json:"resourceId"`
	ModifiedAt string `json:"modifiedAt"`
}

// Input returns the packaging machine's input for t, as JSON.
func (p *Packager) Input(t Target) ([]byte, error) {
	if !quiltpkg.ValidEntryID(t.Entity) {
		return nil, exitcode.Wrap(fmt.Errorf("reconcile: entity %q is not an entry id", t.Entity), exitcode.BadInput)
	}
	at := t.ModifiedAt.UTC().Format(time.RFC3339Nano)
	return json.Marshal(packagingInput{
		Entity:      t.Entity,
		PackageName: quiltpkg.Name(p.Prefix, t.Entity),
		Registry:    p.Registry,
		BaseURL:     p.BaseURL,
		Message:     message{Type: t.MessageType, ResourceID: t.Entity, ModifiedAt: at},
		EventTime:   at,
	})
}

// Start starts the packaging execution of t, named by [ExecutionName].
//
// When Step Functions already has an execution of that name
// (ExecutionAlreadyExists), Start describes it: RUNNING (or
// PENDING_REDRIVE) is already started, and so is SUCCEEDED unless
// t.RestartSucceeded; FAILED, TIMED_OUT, ABORTED (and SUCCEEDED with
// t.RestartSucceeded) left no package, so Start starts the version again
// as NAME-r1, then NAME-r2 if that is taken too and ended the same way,
// up to NAME-r[MaxRestarts]; past that it returns [ErrRestartLimit]. A
// t.NameSuffix turns this off: a taken name is already started.
//
// Errors carry exit codes: 2 for configuration (no such state machine, a
// malformed ARN, access denied), 4 for throttling, 5xx and network errors
// left after the SDK's retries, 1 for a name or input Step Functions
// refuses (a bug) and for [ErrRestartLimit]. When ctx ends, Start makes no
// further call and returns ctx.Err().
func (p *Packager) Start(ctx context.Context, t Target) (Started, error) {
	input, err := p.Input(t)
	if err != nil {
		return Started{}, err
	}
	var prev string
	for n := 0; ; n++ {
		suffix := t.NameSuffix
		if n > 0 {
			suffix = fmt.Sprintf("r%d", n)
		}
		name := ExecutionName(t.Entity, t.ModifiedAt, suffix)
		s, taken, err := p.startOnce(ctx, name, input)
		s.PreviousStatus = prev
		switch {
		case err != nil:
			return s, err
		case !taken:
			s.Restarted = n > 0 && !s.AlreadyStarted
			return s, nil
		case t.NameSuffix != "":
			s.AlreadyStarted = true
			return s, nil
		}
		status, err := p.describe(ctx, s.ARN)
		if err != nil {
			return s, err
		}
		s.PreviousStatus, prev = string(status), string(status)
		if !endedWithoutPackage(status, t.RestartSucceeded) {
			s.AlreadyStarted = true
			return s, nil
		}
		if n == MaxRestarts {
			return s, fmt.Errorf("package %s as modified at %s: %s ended %s: %w", t.Entity,
				t.ModifiedAt.UTC().Format(time.RFC3339Nano), s.Name, status, ErrRestartLimit)
		}
	}
}

// endedWithoutPackage reports whether an execution with status left no
// package: it failed, or it SUCCEEDED and yet the package is stale
// (succeededIsStale).
func endedWithoutPackage(status sfntypes.ExecutionStatus, succeededIsStale bool) bool {
	switch status {
	case sfntypes.ExecutionStatusFailed, sfntypes.ExecutionStatusTimedOut, sfntypes.ExecutionStatusAborted:
		return true
	case sfntypes.ExecutionStatusSucceeded:
		return succeededIsStale
	}
	return false // RUNNING, PENDING_REDRIVE, or a status this program does not know: not started twice
}

// startOnce waits for its turn on the pacer and makes one StartExecution
// call; taken is true when the name was already taken
// (ExecutionAlreadyExists).
func (p *Packager) startOnce(ctx context.Context, name string, input []byte) (s Started, taken bool, err error) {
	s = Started{Name: name, ARN: executionARN(p.StateMachineARN, name)}
	if p.Pacer != nil {
		if err := p.Pacer.Wait(ctx); err != nil {
			return s, false, err
		}
	}
	if err := ctx.Err(); err != nil {
		return s, false, err
	}
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	cctx, cancel := p.callContext(ctx)
	defer cancel()
	called := now()
	out, err := p.Client.StartExecution(cctx, &sfn.StartExecutionInput{
		StateMachineArn: aws.String(p.StateMachineARN),
		Name:            aws.String(name),
		Input:           aws.String(string(input)),
	})
	var exists *sfntypes.ExecutionAlreadyExists
	switch {
	case errors.As(err, &exists):
		return s, true, nil
	case err != nil:
		return s, false, exitcode.Wrap(fmt.Errorf("start execution %s of %s: %w", name, p.StateMachineARN, err), StartErrorCode(err))
	}
	s.ARN = aws.ToString(out.ExecutionArn)
	// Step Functions answers a StartExecution with the name and input of
	// a running execution with that execution, instead of
	// ExecutionAlreadyExists.
	if out.StartDate != nil && out.StartDate.Before(called.Add(-idempotentSkew)) {
		s.AlreadyStarted = true
	}
	return s, false, nil
}

// describe returns the status of the execution arn.
func (p *Packager) describe(ctx context.Context, arn string) (sfntypes.ExecutionStatus, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	cctx, cancel := p.callContext(ctx)
	defer cancel()
	out, err := p.Client.DescribeExecution(cctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(arn)})
	if err != nil {
		return "", exitcode.Wrap(fmt.Errorf("describe execution %s (its name is taken; the role needs states:DescribeExecution on the packaging executions): %w", arn, err), describeErrorCode(err))
	}
	return out.Status, nil
}

// callContext is the context of one Step Functions call (see
// [Packager.CallTimeout]).
func (p *Packager) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if p.CallTimeout <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(context.WithoutCancel(ctx), p.CallTimeout)
}

// describeErrorCode classifies a DescribeExecution error as
// [StartErrorCode] does, except that an execution that does not exist
// (yet: its name was just reported taken) is transient.
func describeErrorCode(err error) int {
	var missing *sfntypes.ExecutionDoesNotExist
	if errors.As(err, &missing) {
		return exitcode.Transient
	}
	return StartErrorCode(err)
}

// executionARN is the ARN Step Functions gives execution name of machine.
func executionARN(machine, name string) string {
	return strings.Replace(machine, ":stateMachine:", ":execution:", 1) + ":" + name
}

// stateMachineARNPattern is a standard state machine's ARN.
var stateMachineARNPattern = regexp.MustCompile(`^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:stateMachine:[A-Za-z0-9_-]{1,80}$`)

// CheckStateMachineARN returns an error (exit code 2) unless arn is a
// state machine's ARN.
func CheckStateMachineARN(arn string) error {
	if !stateMachineARNPattern.MatchString(arn) {
		return exitcode.Wrap(fmt.Errorf("reconcile: %q is not a state machine ARN (arn:aws:states:REGION:ACCOUNT:stateMachine:NAME)", arn), exitcode.Usage)
	}
	return nil
}

// internalCodes are Step Functions errors that mean this program sent a
// request it should not have: a bug, exit code 1.
var internalCodes = map[string]bool{"InvalidName": true, "InvalidExecutionInput": true, "ValidationException": true, "SerializationException": true}

// StartErrorCode classifies a Step Functions error left after the SDK's
// retries: throttling, 5xx, ExecutionLimitExceeded and network errors are
// transient (4); a malformed name or input is a bug (1); other client
// faults (no such state machine, a malformed ARN, access denied, KMS) are
// configuration (2).
func StartErrorCode(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && (re.HTTPStatusCode() >= 500 || re.HTTPStatusCode() == http.StatusTooManyRequests) {
		return exitcode.Transient
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code := ae.ErrorCode()
		_, throttle := retry.DefaultThrottleErrorCodes[code]
		switch {
		case throttle, strings.Contains(code, "Throttl"), code == "ExecutionLimitExceeded", ae.ErrorFault() == smithy.FaultServer:
			return exitcode.Transient
		case internalCodes[code]:
			return exitcode.Internal
		}
		return exitcode.Usage
	}
	return exitcode.Transient
}
