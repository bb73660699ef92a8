package emulate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// s3Modeled lists the error codes S3's API model names; Step Functions
// reports them as S3.<Code>Exception (its AWS SDK integrations add the
// suffix, e.g. S3.NoSuchKeyException). Every other error code, such as
// the 412 PreconditionFailed of a conditional write or InternalError, is
// an unmodeled S3Exception: S3.S3Exception.
var s3Modeled = map[string]bool{
	"BucketAlreadyExists": true, "BucketAlreadyOwnedByYou": true, "EncryptionTypeMismatch": true,
	"IdempotencyParameterMismatch": true, "InvalidObjectState": true, "InvalidRequest": true,
	"InvalidWriteOffset": true, "NoSuchBucket": true, "NoSuchKey": true, "NoSuchUpload": true,
	"ObjectAlreadyInActiveTierError": true, "ObjectNotInActiveTierError": true, "TooManyParts": true,
}

// s3TaskError names an S3 error as Step Functions' aws-sdk:s3 integration
// does: S3.<Code>Exception for a modeled error, S3.S3Exception for any
// other answer of S3, S3.SdkClientException when there was no answer.
func s3TaskError(err error) error {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return &taskError{"S3.SdkClientException", err.Error()}
	}
	code := ae.ErrorCode()
	if code == "NotFound" { // a HEAD's 404 has no body; the model calls it NoSuchKey
		code = "NoSuchKey"
	}
	if s3Modeled[code] {
		return &taskError{"S3." + code + "Exception", ae.ErrorMessage()}
	}
	return &taskError{"S3.S3Exception", fmt.Sprintf("%s: %s", code, ae.ErrorMessage())}
}

// s3Params are the parameters of the read, delete and list tasks.
type s3Params struct {
	Bucket, Key, Prefix string
	MaxKeys             int32
}

// runS3 serves aws-sdk:s3:getObject (Body as text, as Step Functions
// returns it), headObject, deleteObject and listObjectsV2 from versitygw,
// with their results in Step Functions' PascalCase.
func (s *Stack) runS3(ctx context.Context, req taskRequest) (any, error) {
	var p s3Params
	if err := strictDecode(req.Input, &p); err != nil {
		return nil, &taskError{"S3.SdkClientException", err.Error()}
	}
	client, err := s.S3.Client(ctx)
	if err != nil {
		return nil, &taskError{"S3.SdkClientException", err.Error()}
	}
	action := req.Resource[strings.LastIndex(req.Resource, ":")+1:]
	switch action {
	case "getObject":
		out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(p.Bucket), Key: aws.String(p.Key)})
		if err != nil {
			return nil, s3TaskError(err)
		}
		defer out.Body.Close()
		body, err := io.ReadAll(io.LimitReader(out.Body, 256<<10+1))
		if err != nil {
			return nil, &taskError{"S3.SdkClientException", err.Error()}
		}
		if len(body) > 256<<10 {
			return nil, &taskError{"States.DataLimitExceeded", "the object is larger than the 256 KiB a state's output may hold"}
		}
		return map[string]any{"Body": string(body), "ETag": aws.ToString(out.ETag), "ContentLength": aws.ToInt64(out.ContentLength),
			"ContentType": aws.ToString(out.ContentType), "LastModified": timeOf(out.LastModified), "Metadata": out.Metadata}, nil
	case "headObject":
		out, err := client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(p.Bucket), Key: aws.String(p.Key)})
		if err != nil {
			return nil, s3TaskError(err)
		}
		return map[string]any{"ETag": aws.ToString(out.ETag), "ContentLength": aws.ToInt64(out.ContentLength),
			"ContentType": aws.ToString(out.ContentType), "LastModified": timeOf(out.LastModified), "Metadata": out.Metadata}, nil
	case "deleteObject":
		if _, err := client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(p.Bucket), Key: aws.String(p.Key)}); err != nil {
			return nil, s3TaskError(err)
		}
		return map[string]any{}, nil
	case "listObjectsV2":
		in := &s3.ListObjectsV2Input{Bucket: aws.String(p.Bucket), Prefix: aws.String(p.Prefix)}
		if p.MaxKeys > 0 {
			in.MaxKeys = aws.Int32(p.MaxKeys)
		}
		out, err := client.ListObjectsV2(ctx, in)
		if err != nil {
			return nil, s3TaskError(err)
		}
		res := map[string]any{"Name": p.Bucket, "Prefix": p.Prefix, "KeyCount": aws.ToInt32(out.KeyCount),
			"MaxKeys": aws.ToInt32(out.MaxKeys), "IsTruncated": aws.ToBool(out.IsTruncated)}
		if len(out.Contents) > 0 { // Step Functions leaves out an empty list
			var contents []map[string]any
			for _, o := range out.Contents {
				contents = append(contents, map[string]any{"Key": aws.ToString(o.Key), "ETag": aws.ToString(o.ETag),
					"Size": aws.ToInt64(o.Size), "LastModified": timeOf(o.LastModified), "StorageClass": string(o.StorageClass)})
			}
			res["Contents"] = contents
		}
		return res, nil
	}
	return nil, &taskError{"States.Runtime", "emulate: no local handler for resource " + req.Resource}
}

func timeOf(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// executionARN is the shape of a Step Functions execution ARN.
var executionARN = regexp.MustCompile(`^arn:aws[\w-]*:states:[\w-]+:\d{12}:execution:[^:]+:[^:]+$`)

// runDescribeExecution serves aws-sdk:sfn:describeExecution from the
// stack's executions, with Step Functions' error names
// (Sfn.ExecutionDoesNotExistException, Sfn.InvalidArnException).
func (s *Stack) runDescribeExecution(req taskRequest) (any, error) {
	var p struct{ ExecutionArn, IncludedData string }
	if err := strictDecode(req.Input, &p); err != nil {
		return nil, &taskError{"Sfn.SdkClientException", err.Error()}
	}
	if !executionARN.MatchString(p.ExecutionArn) {
		return nil, &taskError{"Sfn.InvalidArnException", "Invalid Arn: '" + p.ExecutionArn + "'"}
	}
	ex := s.Execution(p.ExecutionArn)
	if ex == nil {
		return nil, &taskError{"Sfn.ExecutionDoesNotExistException", "Execution Does Not Exist: '" + p.ExecutionArn + "'"}
	}
	out := map[string]any{"ExecutionArn": ex.ARN, "StateMachineArn": machineArn(ex.Machine), "Name": ex.Name,
		"Status": ex.Status, "StartDate": ex.StartDate.Format(time.RFC3339Nano), "Input": string(ex.Input),
		"InputDetails": map[string]any{"Included": true}}
	if ex.Status != "RUNNING" {
		out["StopDate"] = ex.StopDate.Format(time.RFC3339Nano)
	}
	if ex.Status == "SUCCEEDED" {
		out["Output"] = string(ex.Output)
		out["OutputDetails"] = map[string]any{"Included": true}
	}
	if ex.Error != "" {
		out["Error"], out["Cause"] = ex.Error, ex.Cause
	}
	return out, nil
}

// StopExecution aborts a running execution, as Step Functions'
// StopExecution does: it ends ABORTED without running any Catch, and its
// running ECS tasks are stopped (SIGTERM). It returns once the execution
// has ended.
func (s *Stack) StopExecution(ctx context.Context, arn string) (*Execution, error) {
	if s.Execution(arn) == nil {
		return nil, fmt.Errorf("emulate: no execution %s", arn)
	}
	if err := s.engine.post(ctx, "/stop", map[string]string{"arn": arn}); err != nil {
		return nil, err
	}
	return s.Wait(ctx, arn)
}
