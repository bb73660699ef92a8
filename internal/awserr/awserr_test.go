package awserr

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/stretchr/testify/require"

	"benchling-webhook/internal/exitcode"
)

// answer is err as the SDK returns an AWS answer with status: an
// OperationError around an HTTP ResponseError around the API error.
func answer(service, op string, status int, err error) error {
	return &smithy.OperationError{ServiceID: service, OperationName: op, Err: &awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}}, Err: err},
		RequestID:     "req-1",
	}}
}

func generic(code string, fault smithy.ErrorFault) error {
	return &smithy.GenericAPIError{Code: code, Message: code + " message", Fault: fault}
}

// network is err as the SDK returns a request that got no answer.
func network(service, op string) error {
	return &smithy.OperationError{ServiceID: service, OperationName: op,
		Err: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}}
}

func TestS3Code(t *testing.T) {
	tests := map[string]struct {
		err  error
		code int
	}{
		"no such bucket":           {answer("S3", "GetObject", 404, generic("NoSuchBucket", smithy.FaultClient)), exitcode.Usage},
		"access denied":            {answer("S3", "GetObject", 403, generic("AccessDenied", smithy.FaultClient)), exitcode.Usage},
		"other region":             {answer("S3", "PutObject", 301, generic("PermanentRedirect", smithy.FaultClient)), exitcode.Usage},
		"bad key id":               {answer("S3", "PutObject", 403, generic("InvalidAccessKeyId", smithy.FaultClient)), exitcode.Usage},
		"head forbidden":           {answer("S3", "HeadObject", 403, generic("Forbidden", smithy.FaultClient)), exitcode.Usage},
		"head moved":               {answer("S3", "HeadObject", 301, generic("MovedPermanently", smithy.FaultClient)), exitcode.Usage},
		"head bad request":         {answer("S3", "HeadObject", 400, generic("BadRequest", smithy.FaultClient)), exitcode.Usage},
		"head throttled":           {answer("S3", "HeadObject", 429, generic("TooManyRequests", smithy.FaultClient)), exitcode.Transient},
		"head unavailable":         {answer("S3", "HeadObject", 503, generic("ServiceUnavailable", smithy.FaultServer)), exitcode.Transient},
		"slow down":                {answer("S3", "PutObject", 503, generic("SlowDown", smithy.FaultServer)), exitcode.Transient},
		"internal error":           {answer("S3", "PutObject", 500, generic("InternalError", smithy.FaultServer)), exitcode.Transient},
		"unlisted 4xx with a code": {answer("S3", "PutObject", 400, generic("InvalidRequest", smithy.FaultClient)), exitcode.Transient},
		"network":                  {network("S3", "GetObject"), exitcode.Transient},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, tc.code, S3Code(tc.err))
			err := S3(fmt.Errorf("store: get s3://b/k: %w", tc.err))
			require.Equal(t, tc.code, exitcode.Resolve(err))
			require.ErrorIs(t, err, tc.err, "the cause stays in the chain")
		})
	}
}

func TestSFNCode(t *testing.T) {
	tests := map[string]struct {
		err  error
		code int
	}{
		"execution does not exist": {answer("SFN", "DescribeExecution", 400, &sfntypes.ExecutionDoesNotExist{Message: aws.String("Execution Does Not Exist")}), exitcode.Usage},
		"invalid arn":              {answer("SFN", "DescribeExecution", 400, &sfntypes.InvalidArn{Message: aws.String("Invalid Arn")}), exitcode.Usage},
		"no such machine":          {answer("SFN", "StartExecution", 400, &sfntypes.StateMachineDoesNotExist{Message: aws.String("nope")}), exitcode.Usage},
		"access denied":            {answer("SFN", "StartExecution", 400, generic("AccessDeniedException", smithy.FaultClient)), exitcode.Usage},
		"kms":                      {answer("SFN", "StartExecution", 400, &sfntypes.KmsAccessDeniedException{Message: aws.String("kms")}), exitcode.Usage},
		"throttled":                {answer("SFN", "StartExecution", 400, generic("ThrottlingException", smithy.FaultClient)), exitcode.Transient},
		"too many requests":        {answer("SFN", "DescribeExecution", 429, generic("TooManyRequestsException", smithy.FaultClient)), exitcode.Transient},
		"execution limit":          {answer("SFN", "StartExecution", 400, &sfntypes.ExecutionLimitExceeded{Message: aws.String("limit")}), exitcode.Transient},
		"server error":             {answer("SFN", "StartExecution", 500, generic("InternalServerError", smithy.FaultServer)), exitcode.Transient},
		"server fault on a 400":    {answer("SFN", "StartExecution", 400, generic("ServiceFault", smithy.FaultServer)), exitcode.Transient},
		"bad name":                 {answer("SFN", "StartExecution", 400, &sfntypes.InvalidName{Message: aws.String("name")}), exitcode.Internal},
		"bad input":                {answer("SFN", "StartExecution", 400, &sfntypes.InvalidExecutionInput{Message: aws.String("input")}), exitcode.Internal},
		"validation":               {answer("SFN", "StartExecution", 400, &sfntypes.ValidationException{Message: aws.String("v")}), exitcode.Internal},
		"network":                  {network("SFN", "StartExecution"), exitcode.Transient},
		"no credentials": {&smithy.OperationError{ServiceID: "SFN", OperationName: "DescribeExecution",
			Err: fmt.Errorf("get identity: get credentials: %w", &CredentialsError{Err: errors.New("no EC2 IMDS role found")})}, exitcode.Usage},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, tc.code, SFNCode(tc.err))
			err := SFN(fmt.Errorf("describe execution x: %w", tc.err))
			require.Equal(t, tc.code, exitcode.Resolve(err))
			require.ErrorIs(t, err, tc.err)
		})
	}
}

// TestClassifyKeeps: an error that already has a code keeps it, a
// cancellation stays one, nil stays nil.
func TestClassifyKeeps(t *testing.T) {
	require.NoError(t, S3(nil))
	require.NoError(t, SFN(nil))
	coded := exitcode.Wrap(answer("S3", "PutObject", 500, generic("InternalError", smithy.FaultServer)), exitcode.BadInput)
	require.Equal(t, exitcode.BadInput, exitcode.Resolve(S3(coded)))
	for _, err := range []error{context.Canceled, context.DeadlineExceeded} {
		wrapped := &smithy.OperationError{ServiceID: "S3", OperationName: "GetObject", Err: err}
		require.Same(t, error(wrapped), S3(wrapped))
		require.Same(t, error(wrapped), SFN(wrapped))
	}
}

func TestPredicates(t *testing.T) {
	notFound := []error{
		answer("S3", "GetObject", 404, &s3types.NoSuchKey{Message: aws.String("The specified key does not exist.")}),
		answer("S3", "GetObject", 404, generic("NoSuchKey", smithy.FaultClient)),
		answer("S3", "HeadObject", 404, generic("NotFound", smithy.FaultClient)),
	}
	for _, err := range notFound {
		require.True(t, IsNotFound(err), err)
		require.False(t, IsAccessDenied(err), err)
	}
	require.False(t, IsNotFound(answer("S3", "GetObject", 404, generic("NoSuchBucket", smithy.FaultClient))))

	require.True(t, IsAccessDenied(answer("S3", "GetObject", 403, generic("AccessDenied", smithy.FaultClient))))
	require.True(t, IsAccessDenied(answer("S3", "HeadObject", 403, generic("Forbidden", smithy.FaultClient))))
	require.False(t, IsAccessDenied(answer("S3", "GetObject", 403, generic("InvalidAccessKeyId", smithy.FaultClient))))

	require.True(t, IsExecutionExists(answer("SFN", "StartExecution", 400, &sfntypes.ExecutionAlreadyExists{Message: aws.String("taken")})))
	require.False(t, IsExecutionExists(answer("SFN", "StartExecution", 400, &sfntypes.InvalidName{})))

	require.True(t, IsThrottle(answer("SFN", "StartExecution", 400, generic("ThrottlingException", smithy.FaultClient))))
	require.True(t, IsThrottle(answer("S3", "PutObject", 503, generic("SlowDown", smithy.FaultServer))))
	require.False(t, IsThrottle(answer("S3", "PutObject", 403, generic("AccessDenied", smithy.FaultClient))))
	require.False(t, IsThrottle(network("S3", "GetObject")))
}

// TestTagCredentials: the provider's failures become CredentialsErrors,
// except once the context has ended; sources pass through.
func TestTagCredentials(t *testing.T) {
	require.Nil(t, TagCredentials(nil))
	failing := TagCredentials(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{}, errors.New("no role")
	}))
	_, err := failing.Retrieve(t.Context())
	var ce *CredentialsError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, exitcode.Usage, SFNCode(err))

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = failing.Retrieve(ctx)
	require.False(t, errors.As(err, &ce), "an interruption is not configuration")

	working := TagCredentials(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: "AKID", SecretAccessKey: "s"}, nil
	}))
	c, err := working.Retrieve(t.Context())
	require.NoError(t, err)
	require.Equal(t, "AKID", c.AccessKeyID)
	require.Nil(t, working.(aws.CredentialProviderSource).ProviderSources())
}
