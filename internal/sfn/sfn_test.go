package sfn

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awssfn "github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/stretchr/testify/require"

	"benchling-webhook/internal/awserr"
	"benchling-webhook/internal/exitcode"
)

const machine = "arn:aws:states:us-east-1:123456789012:stateMachine:packaging"

// fakeAPI answers with start and describe; it records the requests.
type fakeAPI struct {
	start     func(*awssfn.StartExecutionInput) (*awssfn.StartExecutionOutput, error)
	describe  func(*awssfn.DescribeExecutionInput) (*awssfn.DescribeExecutionOutput, error)
	described []*awssfn.DescribeExecutionInput
}

func (f *fakeAPI) StartExecution(_ context.Context, in *awssfn.StartExecutionInput, _ ...func(*awssfn.Options)) (*awssfn.StartExecutionOutput, error) {
	return f.start(in)
}

func (f *fakeAPI) DescribeExecution(_ context.Context, in *awssfn.DescribeExecutionInput, _ ...func(*awssfn.Options)) (*awssfn.DescribeExecutionOutput, error) {
	f.described = append(f.described, in)
	return f.describe(in)
}

// answer is err as the SDK returns a Step Functions answer.
func answer(op string, status int, err error) error {
	return &smithy.OperationError{ServiceID: "SFN", OperationName: op, Err: &awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}}, Err: err},
	}}
}

func TestStart(t *testing.T) {
	at := time.Date(2025, 3, 7, 12, 0, 0, 0, time.UTC)
	tests := map[string]struct {
		err  error
		want Started
		code int
	}{
		"started": {want: Started{ARN: ExecutionARN(machine, "n"), StartDate: at}},
		"taken": {err: answer("StartExecution", 400, &sfntypes.ExecutionAlreadyExists{Message: aws.String("taken")}),
			want: Started{ARN: ExecutionARN(machine, "n"), Taken: true}},
		"no machine": {err: answer("StartExecution", 400, &sfntypes.StateMachineDoesNotExist{Message: aws.String("nope")}), code: exitcode.Usage},
		"throttled":  {err: answer("StartExecution", 400, &smithy.GenericAPIError{Code: "ThrottlingException"}), code: exitcode.Transient},
		"bad name":   {err: answer("StartExecution", 400, &sfntypes.InvalidName{Message: aws.String("name")}), code: exitcode.Internal},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := New(&fakeAPI{start: func(in *awssfn.StartExecutionInput) (*awssfn.StartExecutionOutput, error) {
				require.Equal(t, machine, aws.ToString(in.StateMachineArn))
				require.Equal(t, "n", aws.ToString(in.Name))
				require.JSONEq(t, `{"a":1}`, aws.ToString(in.Input))
				if tc.err != nil {
					return nil, tc.err
				}
				return &awssfn.StartExecutionOutput{ExecutionArn: aws.String(ExecutionARN(machine, *in.Name)), StartDate: aws.Time(at)}, nil
			}})
			got, err := c.Start(t.Context(), machine, "n", []byte(`{"a":1}`))
			if tc.code != 0 {
				require.Equal(t, tc.code, exitcode.Resolve(err), err)
				require.ErrorContains(t, err, "start execution n of "+machine)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestDescribe(t *testing.T) {
	const arn = "arn:aws:states:us-east-1:123456789012:execution:packaging:n"
	f := &fakeAPI{describe: func(in *awssfn.DescribeExecutionInput) (*awssfn.DescribeExecutionOutput, error) {
		switch aws.ToString(in.ExecutionArn) {
		case arn:
			return &awssfn.DescribeExecutionOutput{Status: sfntypes.ExecutionStatusFailed, Input: aws.String("{}"),
				Error: aws.String("ExportFailed"), Cause: aws.String("export FAILED")}, nil
		case arn + "-running":
			return &awssfn.DescribeExecutionOutput{Status: sfntypes.ExecutionStatusPendingRedrive}, nil
		}
		return nil, answer("DescribeExecution", 400, &sfntypes.ExecutionDoesNotExist{Message: aws.String("Execution Does Not Exist")})
	}}
	c := New(f)
	ex, err := c.Describe(t.Context(), arn)
	require.NoError(t, err)
	require.Equal(t, Execution{Status: sfntypes.ExecutionStatusFailed, Input: aws.String("{}"), Error: "ExportFailed", Cause: "export FAILED"}, ex)
	require.False(t, ex.Running())
	require.Equal(t, sfntypes.IncludedDataAllData, f.described[0].IncludedData)

	ex, err = c.Describe(t.Context(), arn+"-running")
	require.NoError(t, err)
	require.True(t, ex.Running())

	_, err = c.Describe(t.Context(), arn+"-gone")
	require.Equal(t, exitcode.Usage, exitcode.Resolve(err), "a missing execution is configuration, everywhere")
	var missing *sfntypes.ExecutionDoesNotExist
	require.ErrorAs(t, err, &missing)
	require.ErrorContains(t, err, "describe execution "+arn+"-gone")
}

// TestNewAPICredentials: the client's credential failures read as
// configuration.
func TestNewAPICredentials(t *testing.T) {
	client := NewAPI(aws.Config{Region: "us-east-1", RetryMaxAttempts: 1, BaseEndpoint: aws.String("http://127.0.0.1:1"),
		Credentials: aws.NewCredentialsCache(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{}, errors.New("no credentials in this test")
		}))})
	_, err := New(client).Describe(t.Context(), "arn:aws:states:us-east-1:123456789012:execution:m:x")
	var ce *awserr.CredentialsError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, exitcode.Usage, exitcode.Resolve(err))
	require.Nil(t, NewAPI(aws.Config{Region: "us-east-1"}).Options().Credentials, "no provider stays none")
}

func TestExecutionARN(t *testing.T) {
	require.Equal(t, "arn:aws:states:us-east-1:123456789012:execution:packaging:etr_a-1", ExecutionARN(machine, "etr_a-1"))
}

func TestCheckStateMachineARN(t *testing.T) {
	require.NoError(t, CheckStateMachineARN(machine))
	require.NoError(t, CheckStateMachineARN("arn:aws-us-gov:states:us-gov-west-1:123456789012:stateMachine:m"))
	for _, bad := range []string{"", "arn:aws:states:us-east-1:123456789012:execution:m:x", "m", "arn:aws:states:us-east-1:1234:stateMachine:m"} {
		err := CheckStateMachineARN(bad)
		require.Error(t, err, bad)
		require.Equal(t, exitcode.Usage, exitcode.Resolve(err))
	}
}
