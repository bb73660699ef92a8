package reconcile

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"benchling-webhook/internal/exitcode"
	"benchling-webhook/internal/quiltpkg"
	"benchling-webhook/internal/sfn"
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
	Client sfn.API
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
	s = Started{Name: name, ARN: sfn.ExecutionARN(p.StateMachineARN, name)}
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
	out, err := sfn.New(p.Client).Start(cctx, p.StateMachineARN, name, input)
	switch {
	case err != nil:
		return s, false, err
	case out.Taken:
		return s, true, nil
	}
	s.ARN = out.ARN
	// Step Functions answers a StartExecution with the name and input of
	// a running execution with that execution, instead of
	// ExecutionAlreadyExists.
	if !out.StartDate.IsZero() && out.StartDate.Before(called.Add(-idempotentSkew)) {
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
	ex, err := sfn.New(p.Client).Describe(cctx, arn)
	if err != nil {
		return "", fmt.Errorf("%w (its name is taken; the role needs states:DescribeExecution on the packaging executions)", err)
	}
	return ex.Status, nil
}

// callContext is the context of one Step Functions call (see
// [Packager.CallTimeout]).
func (p *Packager) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if p.CallTimeout <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(context.WithoutCancel(ctx), p.CallTimeout)
}
