package reconcile

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"benchling-webhook/internal/exitcode"
	"benchling-webhook/internal/store"
)

// KeyLister is the part of the S3 client [WithListFallback] uses.
type KeyLister interface {
	ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, optFns ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
}

var _ KeyLister = (*s3.Client)(nil)

// WithListFallback returns s with one change: a Get or Head that S3
// answers with AccessDenied (403 Forbidden, for a Head) is checked by
// listing the key, and if the listing works and does not show it, it
// reports [store.ErrNotFound] instead.
//
// S3 answers a GetObject or HeadObject of a missing key with 403, not
// 404, unless the caller may s3:ListBucket the bucket; the worker's task
// role may list only below the package prefix (a condition on s3:prefix),
// which a GetObject request does not carry. A missing entry.json or
// README.md, the very cases reconcile looks for, would otherwise stop the
// run as a configuration error. A real denial stays one: the listing is
// denied too, or shows the key.
func WithListFallback(s Store, client KeyLister, bucket string) Store {
	return listFallback{Store: s, client: client, bucket: bucket}
}

type listFallback struct {
	Store
	client KeyLister
	bucket string
}

func (l listFallback) Get(ctx context.Context, key string, max int64) ([]byte, error) {
	data, err := l.Store.Get(ctx, key, max)
	if err == nil || !denied(err) {
		return data, err
	}
	return nil, l.missing(ctx, "get", key, err)
}

func (l listFallback) Head(ctx context.Context, key string) (time.Time, error) {
	at, err := l.Store.Head(ctx, key)
	if err == nil || !denied(err) {
		return at, err
	}
	return time.Time{}, l.missing(ctx, "head", key, err)
}

// missing returns an error wrapping [store.ErrNotFound] if listing shows
// no key, else the denial err.
func (l listFallback) missing(ctx context.Context, verb, key string, err error) error {
	out, lerr := l.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(l.bucket), Prefix: aws.String(key), MaxKeys: aws.Int32(1)})
	if lerr != nil || len(out.Contents) > 0 && aws.ToString(out.Contents[0].Key) == key {
		return err
	}
	return fmt.Errorf("%s s3://%s/%s: denied, and not listed: %w", verb, l.bucket, key, store.ErrNotFound)
}

// denied reports whether err is S3's AccessDenied: the code of a GetObject's
// answer, or of a HeadObject's, which has no body and so only its status.
func denied(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && (ae.ErrorCode() == "AccessDenied" || ae.ErrorCode() == "Forbidden")
}

// S3API is the part of the S3 client [NewS3Store] uses.
type S3API interface {
	store.S3API
	HeadObject(ctx context.Context, in *s3.HeadObjectInput, optFns ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
}

var _ S3API = (*s3.Client)(nil)

// S3Store is the [Store] job reconcile uses: a [store.S3] for Get and Put,
// and HeadObject for Head. Safe for concurrent use.
type S3Store struct {
	*store.S3
	client S3API
	bucket string
}

// NewS3Store returns the store of bucket through client.
func NewS3Store(client S3API, bucket string) *S3Store {
	return &S3Store{S3: store.NewS3(client, store.S3Options{Bucket: bucket}), client: client, bucket: bucket}
}

// Head returns when the object at key was last written (to the second).
// A missing object is [store.ErrNotFound]; other errors carry exit codes:
// 2 for a client fault (access denied, a bucket in another region), 4 for
// throttling, 5xx and network errors left after the SDK's retries.
func (s *S3Store) Head(ctx context.Context, key string) (time.Time, error) {
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err == nil {
		return aws.ToTime(out.LastModified), nil
	}
	err = fmt.Errorf("head s3://%s/%s: %w", s.bucket, key, err)
	var re *smithyhttp.ResponseError
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return time.Time{}, err
	case !errors.As(err, &re):
		return time.Time{}, exitcode.Wrap(err, exitcode.Transient) // no answer: the network
	case re.HTTPStatusCode() == http.StatusNotFound:
		// A HEAD answer has no body: a missing bucket looks the same, but
		// the run has read the state object (a GetObject) before.
		return time.Time{}, fmt.Errorf("%w: %w", err, store.ErrNotFound)
	case re.HTTPStatusCode() >= 500 || re.HTTPStatusCode() == http.StatusTooManyRequests:
		return time.Time{}, exitcode.Wrap(err, exitcode.Transient)
	}
	return time.Time{}, exitcode.Wrap(err, exitcode.Usage)
}
