// Package awserr turns the errors of AWS SDK calls (S3, Step Functions)
// into exit codes, in one place; the table is in docs/architecture.md
// ("Exit codes of AWS calls").
package awserr

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"benchling-webhook/internal/exitcode"
)

// S3 returns err with the exit code [S3Code] gives it attached. It
// returns err unchanged when err is nil, already carries a code (a
// checksum error from an entry's body, say) or is a cancellation.
func S3(err error) error { return classify(err, S3Code) }

// SFN returns err with the exit code [SFNCode] gives it attached, under
// the same exceptions as [S3].
func SFN(err error) error { return classify(err, SFNCode) }

func classify(err error, code func(error) int) error {
	var c exitcode.Coder
	if err == nil || errors.As(err, &c) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return exitcode.Wrap(err, code(err))
}

// s3ConfigCodes are S3 error codes that mean the configuration is wrong
// (bucket, region, credentials, permissions).
var s3ConfigCodes = map[string]bool{
	"NoSuchBucket": true, "AccessDenied": true, "Forbidden": true, "AllAccessDisabled": true, "InvalidAccessKeyId": true,
	"SignatureDoesNotMatch": true, "InvalidBucketName": true, "AuthorizationHeaderMalformed": true,
	"PermanentRedirect": true, "InvalidToken": true, "AccountProblem": true,
}

// S3Code is the exit code of an S3 error left after the SDK's retries:
// [exitcode.Usage] for a configuration fault (no such bucket, access
// denied, a bucket in another region, bad credentials, credentials that
// cannot be had ([CredentialsError]: only a client built with
// [TagCredentials] reports them)), and for a 3xx
// or 4xx answer without a body (a HEAD's: 403, 301, 400), which names
// only its status; [exitcode.Transient] for everything else (network, 5xx,
// throttling, and a 4xx with an error code not listed, as before).
func S3Code(err error) int {
	var ae smithy.APIError
	var noCreds *CredentialsError
	if errors.As(err, &ae) && s3ConfigCodes[ae.ErrorCode()] || errors.As(err, &noCreds) {
		return exitcode.Usage
	}
	if status, ok := httpStatus(err); ok && status >= 300 && status < 500 && status != http.StatusTooManyRequests &&
		ae != nil && ae.ErrorCode() == statusCode(status) {
		return exitcode.Usage // a HEAD: no body, no code but the status text
	}
	return exitcode.Transient
}

// sfnInternalCodes are Step Functions errors that mean this program sent a
// request it should not have: a bug.
var sfnInternalCodes = map[string]bool{"InvalidName": true, "InvalidExecutionInput": true, "ValidationException": true, "SerializationException": true}

// SFNCode is the exit code of a Step Functions error left after the SDK's
// retries:
//
//   - [exitcode.Transient] for throttling, 5xx, ExecutionLimitExceeded and
//     errors that are not an AWS answer (the network);
//   - [exitcode.Internal] for a name or input Step Functions refuses;
//   - [exitcode.Usage] for credentials that cannot be had
//     ([CredentialsError]) and every other client fault: no such state
//     machine, a malformed ARN, access denied, KMS, and
//     ExecutionDoesNotExist.
//
// ExecutionDoesNotExist is configuration everywhere, not transient: a
// standard workflow's DescribeExecution is consistent at once after
// StartExecution (or its ExecutionAlreadyExists), so a missing execution
// means the ARN names another region, account or machine, or one whose
// history has aged out (90 days). A retry cannot help.
func SFNCode(err error) int {
	var missing *sfntypes.ExecutionDoesNotExist
	var badARN *sfntypes.InvalidArn
	var noCreds *CredentialsError
	if errors.As(err, &missing) || errors.As(err, &badARN) || errors.As(err, &noCreds) {
		return exitcode.Usage
	}
	if IsThrottle(err) {
		return exitcode.Transient
	}
	var ae smithy.APIError
	switch {
	case !errors.As(err, &ae):
		return exitcode.Transient
	case ae.ErrorCode() == "ExecutionLimitExceeded":
		return exitcode.Transient
	case sfnInternalCodes[ae.ErrorCode()]:
		return exitcode.Internal
	}
	return exitcode.Usage
}

// IsThrottle reports whether err is an answer a later call may not get:
// a 5xx or 429 status, a throttling error code, or a server fault.
func IsThrottle(err error) bool {
	if status, ok := httpStatus(err); ok && (status >= 500 || status == http.StatusTooManyRequests) {
		return true
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	_, throttle := retry.DefaultThrottleErrorCodes[ae.ErrorCode()]
	return throttle || strings.Contains(ae.ErrorCode(), "Throttl") || ae.ErrorFault() == smithy.FaultServer
}

// IsNotFound reports whether err is S3's answer for a missing key: a
// GetObject's NoSuchKey, or a HeadObject's 404 (which has no body, so a
// missing bucket looks the same).
func IsNotFound(err error) bool {
	var nsk *s3types.NoSuchKey
	var ae smithy.APIError
	return errors.As(err, &nsk) || errors.As(err, &ae) && (ae.ErrorCode() == "NoSuchKey" || ae.ErrorCode() == "NotFound")
}

// IsAccessDenied reports whether err is S3's AccessDenied: the code of a
// GetObject's answer, or of a HeadObject's, which has no body and so only
// its status (403 Forbidden).
func IsAccessDenied(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && (ae.ErrorCode() == "AccessDenied" || ae.ErrorCode() == "Forbidden")
}

// IsExecutionExists reports whether err is Step Functions'
// ExecutionAlreadyExists: the name is taken.
func IsExecutionExists(err error) bool {
	var exists *sfntypes.ExecutionAlreadyExists
	return errors.As(err, &exists)
}

// httpStatus is the status of the answer err carries, if any.
func httpStatus(err error) (int, bool) {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && re.Response != nil && re.Response.Response != nil {
		return re.HTTPStatusCode(), true
	}
	return 0, false
}

// statusCode is the error code the SDK gives an answer without a body:
// its status text without spaces ("Forbidden", "MovedPermanently").
func statusCode(status int) string { return strings.ReplaceAll(http.StatusText(status), " ", "") }

// CredentialsError is a failure to get AWS credentials: none configured,
// or the provider chain refusing or failing. The SDK has no error type for
// it (it wraps the provider's error in strings: "get identity: get
// credentials: failed to refresh cached credentials, …"), so
// [TagCredentials] marks it where it arises.
type CredentialsError struct{ Err error }

func (e *CredentialsError) Error() string { return e.Err.Error() }
func (e *CredentialsError) Unwrap() error { return e.Err }

// TagCredentials wraps a credentials provider (the SDK's cache, as a
// rule) so that its failures are [CredentialsError]s, except when the
// context has ended, which is an interruption, not configuration.
// A nil p stays nil.
func TagCredentials(p aws.CredentialsProvider) aws.CredentialsProvider {
	if p == nil {
		return nil
	}
	return taggedCredentials{p: p}
}

type taggedCredentials struct{ p aws.CredentialsProvider }

var (
	_ aws.CredentialsProvider      = taggedCredentials{}
	_ aws.CredentialProviderSource = taggedCredentials{}
)

// Retrieve returns p's credentials.
func (t taggedCredentials) Retrieve(ctx context.Context) (aws.Credentials, error) {
	c, err := t.p.Retrieve(ctx)
	if err != nil && ctx.Err() == nil {
		return c, &CredentialsError{Err: err}
	}
	return c, err
}

// ProviderSources passes on p's sources, which the SDK reports in its user
// agent.
func (t taggedCredentials) ProviderSources() []aws.CredentialSource {
	if s, ok := t.p.(aws.CredentialProviderSource); ok {
		return s.ProviderSources()
	}
	return nil
}
