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

// entityPattern is what an entity id may look like to become part of a
// key and of an execution name.
var entityPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// ValidEntity reports whether id can be packaged: letters, digits, '_'
// and '-' (Benchling's ids are "etr_" and letters and digits).
func ValidEntity(id string) bool { return entityPattern.MatchString(id) }

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

// StartAPI is the part of the Step Functions client that starts executions.
type StartAPI interface {
	StartExecution(ctx context.Context, in *sfn.StartExecutionInput, optFns ...func(*sfn.Options)) (*sfn.StartExecutionOutput, error)
}

var _ StartAPI = (*sfn.Client)(nil)

// Packager starts packaging executions: the packaging state machine's
// input for one entry, as the webhook machine builds it. Its fields must
// not change once it is in use; it is safe for concurrent use when its
// client is.
type Packager struct {
	// Client starts the executions.
	Client StartAPI
	// StateMachineARN is the packaging state machine.
	StateMachineARN string
	// Registry is the bucket the packages go to.
	Registry string
	// Prefix is the package name prefix: entity e is packaged as
	// <Prefix>/<e>.
	Prefix string
	// BaseURL is the Benchling tenant's URL (the input's baseURL).
	BaseURL string
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
	// [ExecutionName]), so the same version can be packaged again.
	NameSuffix string
}

// Started is the outcome of [Packager.Start].
type Started struct {
	// Name and ARN name the execution.
	Name, ARN string
	// AlreadyStarted is true when Step Functions already had an execution
	// of that name (ExecutionAlreadyExists, or the same running execution
	// returned again): nothing new was started.
	AlreadyStarted bool
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
	if !ValidEntity(t.Entity) {
		return nil, exitcode.Wrap(fmt.Errorf("reconcile: entity %q is not an entry id", t.Entity), exitcode.BadInput)
	}
	at := t.ModifiedAt.UTC().Format(time.RFC3339Nano)
	return json.Marshal(packagingInput{
		Entity:      t.Entity,
		PackageName: p.Prefix + "/" + t.Entity,
		Registry:    p.Registry,
		BaseURL:     p.BaseURL,
		Message:     message{Type: t.MessageType, ResourceID: t.Entity, ModifiedAt: at},
		EventTime:   at,
	})
}

// Start starts the packaging execution of t. An execution of the same
// name that already exists is not an error: Started.AlreadyStarted says so.
// Errors carry exit codes: 2 for configuration (no such state machine, a
// malformed ARN, access denied), 4 for throttling, 5xx and network errors
// left after the SDK's retries, 1 for a name or input Step Functions
// refuses (a bug).
func (p *Packager) Start(ctx context.Context, t Target) (Started, error) {
	input, err := p.Input(t)
	if err != nil {
		return Started{}, err
	}
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	name := ExecutionName(t.Entity, t.ModifiedAt, t.NameSuffix)
	arn := executionARN(p.StateMachineARN, name)
	called := now()
	out, err := p.Client.StartExecution(ctx, &sfn.StartExecutionInput{
		StateMachineArn: aws.String(p.StateMachineARN),
		Name:            aws.String(name),
		Input:           aws.String(string(input)),
	})
	var exists *sfntypes.ExecutionAlreadyExists
	switch {
	case errors.As(err, &exists):
		return Started{Name: name, ARN: arn, AlreadyStarted: true}, nil
	case err != nil:
		return Started{Name: name}, exitcode.Wrap(fmt.Errorf("start execution %s of %s: %w", name, p.StateMachineARN, err), StartErrorCode(err))
	}
	s := Started{Name: name, ARN: aws.ToString(out.ExecutionArn)}
	if out.StartDate != nil && out.StartDate.Before(called.Add(-idempotentSkew)) {
		s.AlreadyStarted = true
	}
	return s, nil
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
