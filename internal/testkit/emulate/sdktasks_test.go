package emulate

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/require"

	"benchling-webhook/internal/testkit/s3local"
)

func TestS3TaskErrorNames(t *testing.T) {
	for code, want := range map[string]string{
		"NoSuchKey":          "S3.NoSuchKeyException",
		"NotFound":           "S3.NoSuchKeyException", // a HEAD's 404
		"NoSuchBucket":       "S3.NoSuchBucketException",
		"PreconditionFailed": "S3.S3Exception", // not in S3's model
		"InternalError":      "S3.S3Exception",
		"AccessDenied":       "S3.S3Exception",
	} {
		var te *taskError
		require.True(t, errors.As(s3TaskError(&smithy.GenericAPIError{Code: code, Message: "m"}), &te))
		require.Equal(t, want, te.Name, code)
	}
	var te *taskError
	require.True(t, errors.As(s3TaskError(errors.New("dial tcp: refused")), &te))
	require.Equal(t, "S3.SdkClientException", te.Name)
}

// TestS3Tasks runs the lease's S3 calls against versitygw as the
// packaging machine makes them: a conditional create, a conditional
// replace, a read with the ETag, a listing and a delete.
func TestS3Tasks(t *testing.T) {
	srv := s3local.StartT(t)
	require.NoError(t, srv.CreateBucket(t.Context(), "lease-bucket"))
	s := &Stack{S3: srv}
	run := func(action string, params map[string]any) (map[string]any, error) {
		t.Helper()
		in, err := json.Marshal(params)
		require.NoError(t, err)
		req := taskRequest{Resource: "arn:aws:states:::aws-sdk:s3:" + action, Input: in}
		out, err := s.runTask(t.Context(), req)
		if err != nil {
			return nil, err
		}
		b, err := json.Marshal(out)
		require.NoError(t, err)
		var m map[string]any
		require.NoError(t, json.Unmarshal(b, &m))
		return m, nil
	}
	name := func(err error) string {
		var te *taskError
		require.True(t, errors.As(err, &te), "%v", err)
		return te.Name
	}
	key := map[string]any{"Bucket": "lease-bucket", "Key": "p/.packaging/etr_1/lease.json"}
	with := func(kv ...any) map[string]any {
		m := map[string]any{"Bucket": "lease-bucket", "Key": key["Key"]}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}

	_, err := run("getObject", key)
	require.Equal(t, "S3.NoSuchKeyException", name(err))
	_, err = run("headObject", key)
	require.Equal(t, "S3.NoSuchKeyException", name(err))
	list, err := run("listObjectsV2", map[string]any{"Bucket": "lease-bucket", "Prefix": key["Key"], "MaxKeys": 1})
	require.NoError(t, err)
	require.EqualValues(t, 0, list["KeyCount"])
	require.NotContains(t, list, "Contents")

	put, err := run("putObject", with("Body", map[string]string{"holder": "a"}, "IfNoneMatch", "*"))
	require.NoError(t, err)
	_, err = run("putObject", with("Body", map[string]string{"holder": "b"}, "IfNoneMatch", "*"))
	require.Equal(t, "S3.S3Exception", name(err), "the second create")

	got, err := run("getObject", key)
	require.NoError(t, err)
	require.Equal(t, `{"holder":"a"}`, got["Body"])
	require.Equal(t, put["ETag"], got["ETag"])

	_, err = run("putObject", with("Body", map[string]string{"holder": "c"}, "IfMatch", `"0123456789abcdef0123456789abcdef"`))
	require.Equal(t, "S3.S3Exception", name(err), "a replace of another version")
	_, err = run("putObject", with("Body", map[string]string{"holder": "c"}, "IfMatch", got["ETag"]))
	require.NoError(t, err)
	got, err = run("getObject", key)
	require.NoError(t, err)
	require.Equal(t, `{"holder":"c"}`, got["Body"])

	list, err = run("listObjectsV2", map[string]any{"Bucket": "lease-bucket", "Prefix": key["Key"], "MaxKeys": 1})
	require.NoError(t, err)
	require.EqualValues(t, 1, list["KeyCount"])

	_, err = run("deleteObject", key)
	require.NoError(t, err)
	_, err = run("deleteObject", key)
	require.NoError(t, err, "deleting a missing key is no error")
	_, err = run("getObject", key)
	require.Equal(t, "S3.NoSuchKeyException", name(err))

	// The bucket is versioned, as Quilt's are: the deletes left a delete
	// marker as the current version, which S3's If-None-Match treats as no
	// object, so a released lease can be created again, once.
	_, err = run("putObject", with("Body", map[string]string{"holder": "d"}, "IfNoneMatch", "*"))
	require.NoError(t, err, "a create over a delete marker")
	_, err = run("putObject", with("Body", map[string]string{"holder": "e"}, "IfNoneMatch", "*"))
	require.Equal(t, "S3.S3Exception", name(err), "the second create over it")
	got, err = run("getObject", key)
	require.NoError(t, err)
	require.Equal(t, `{"holder":"d"}`, got["Body"])
}

func TestDescribeExecutionTask(t *testing.T) {
	s := &Stack{executions: map[string]*Execution{}}
	arn := "arn:aws:states:us-east-1:000000000000:execution:packaging:x"
	s.executions[arn] = &Execution{ARN: arn, Name: "x", Machine: Packaging, Status: "ABORTED", Input: json.RawMessage(`{}`)}
	run := func(arn string) (any, error) {
		in, _ := json.Marshal(map[string]string{"ExecutionArn": arn})
		return s.runTask(t.Context(), taskRequest{Resource: "arn:aws:states:::aws-sdk:sfn:describeExecution", Input: in})
	}
	out, err := run(arn)
	require.NoError(t, err)
	require.Equal(t, "ABORTED", out.(map[string]any)["Status"])
	for a, want := range map[string]string{
		"arn:aws:states:us-east-1:000000000000:execution:packaging:gone": "Sfn.ExecutionDoesNotExistException",
		"not-an-arn": "Sfn.InvalidArnException",
	} {
		_, err := run(a)
		var te *taskError
		require.True(t, errors.As(err, &te))
		require.Equal(t, want, te.Name, a)
	}
}
