// Package sfn is the Step Functions calls the job makes (start an
// execution, describe one), their errors carrying exit codes from
// [awserr.SFN]; see docs/architecture.md ("Exit codes of AWS calls").
package sfn

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssfn "github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"benchling-webhook/internal/awserr"
	"benchling-webhook/internal/exitcode"
)

// API is the part of the SDK's Step Functions client a [Client] uses.
type API interface {
	StartExecution(ctx context.Context, in *awssfn.StartExecutionInput, optFns ...func(*awssfn.Options)) (*awssfn.StartExecutionOutput, error)
	DescribeExecution(ctx context.Context, in *awssfn.DescribeExecutionInput, optFns ...func(*awssfn.Options)) (*awssfn.DescribeExecutionOutput, error)
}

var _ API = (*awssfn.Client)(nil)

// NewAPI builds the SDK client from cfg (region, endpoint, retries), with
// its credential failures marked as [awserr.CredentialsError]s, so that
// they read as configuration (exit 2).
func NewAPI(cfg aws.Config) *awssfn.Client {
	return awssfn.NewFromConfig(cfg, func(o *awssfn.Options) {
		o.Credentials = awserr.TagCredentials(o.Credentials)
	})
}

// Client makes the calls through an [API]. It is safe for concurrent use
// when the API is (the SDK's client is).
type Client struct{ api API }

// New returns a client calling api.
func New(api API) *Client { return &Client{api: api} }

// Started is the answer to [Client.Start].
type Started struct {
	// ARN is the execution's: the new one, or, when Taken, the one that
	// has the name.
	ARN string
	// StartDate is when the execution started (zero when Taken). Step
	// Functions answers a StartExecution with the name and input of a
	// running execution with that execution, so an old StartDate means
	// nothing new was started.
	StartDate time.Time
	// Taken is true when Step Functions refused the name as taken
	// (ExecutionAlreadyExists): nothing was started.
	Taken bool
}

// Start starts the execution name of the state machine machine with
// input. A name already taken is not an error: Started.Taken says so.
// Errors carry the exit codes of [awserr.SFNCode].
func (c *Client) Start(ctx context.Context, machine, name string, input []byte) (Started, error) {
	out, err := c.api.StartExecution(ctx, &awssfn.StartExecutionInput{
		StateMachineArn: aws.String(machine),
		Name:            aws.String(name),
		Input:           aws.String(string(input)),
	})
	switch {
	case awserr.IsExecutionExists(err):
		return Started{ARN: ExecutionARN(machine, name), Taken: true}, nil
	case err != nil:
		return Started{}, awserr.SFN(fmt.Errorf("start execution %s of %s: %w", name, machine, err))
	}
	return Started{ARN: aws.ToString(out.ExecutionArn), StartDate: aws.ToTime(out.StartDate)}, nil
}

// Execution is the answer to [Client.Describe].
type Execution struct {
	// Status is RUNNING, SUCCEEDED, FAILED, ….
	Status sfntypes.ExecutionStatus
	// Input is the execution's input; nil when the answer has none (the
	// caller may not kms:Decrypt it).
	Input *string
	// Error and Cause say why an execution did not succeed.
	Error, Cause string
}

// Running reports whether the execution has not ended: RUNNING, or
// PENDING_REDRIVE.
func (e Execution) Running() bool {
	return e.Status == sfntypes.ExecutionStatusRunning || e.Status == sfntypes.ExecutionStatusPendingRedrive
}

// Describe describes the execution arn, its input included. Errors
// carry the exit codes of [awserr.SFNCode]: ExecutionDoesNotExist is a
// configuration error (2), as an execution Step Functions does not know is
// on another region, account or machine, or has aged out.
func (c *Client) Describe(ctx context.Context, arn string) (Execution, error) {
	out, err := c.api.DescribeExecution(ctx, &awssfn.DescribeExecutionInput{
		ExecutionArn: aws.String(arn),
		IncludedData: sfntypes.IncludedDataAllData,
	})
	if err != nil {
		return Execution{}, awserr.SFN(fmt.Errorf("describe execution %s: %w", arn, err))
	}
	return Execution{Status: out.Status, Input: out.Input, Error: aws.ToString(out.Error), Cause: aws.ToString(out.Cause)}, nil
}

// ExecutionARN is the ARN Step Functions gives the execution name of the
// state machine machine.
func ExecutionARN(machine, name string) string {
	return strings.Replace(machine, ":stateMachine:", ":execution:", 1) + ":" + name
}

// stateMachineARNPattern is a standard state machine's ARN.
var stateMachineARNPattern = regexp.MustCompile(`^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:stateMachine:[A-Za-z0-9_-]{1,80}$`)

// CheckStateMachineARN returns an error (exit code 2) unless arn is a
// state machine's ARN.
func CheckStateMachineARN(arn string) error {
	if !stateMachineARNPattern.MatchString(arn) {
		return exitcode.Wrap(fmt.Errorf("sfn: %q is not a state machine ARN (arn:aws:states:REGION:ACCOUNT:stateMachine:NAME)", arn), exitcode.Usage)
	}
	return nil
}
