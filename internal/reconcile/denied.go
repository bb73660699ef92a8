package reconcile

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"benchling-webhook/internal/store"
)

// KeyLister is the part of the S3 client [WithListFallback] uses.
type KeyLister interface {
	ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, optFns ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
}

var _ KeyLister = (*s3.Client)(nil)

// WithListFallback returns s with one change: a Get that S3 answers with
// AccessDenied is checked by listing the key, and if the listing works and
// does not show it, the Get reports [store.ErrNotFound] instead.
//
// S3 answers a GetObject of a missing key with 403 AccessDenied, not 404,
// unless the caller may s3:ListBucket the bucket; the worker's task role
// may list only below the package prefix (a condition on s3:prefix), which
// a GetObject request does not carry. A missing entry.json, the very case
// reconcile looks for, would otherwise stop the run as a configuration
// error. A real denial stays one: the listing is denied too, or shows the
// key.
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
	var ae smithy.APIError
	if err == nil || !errors.As(err, &ae) || ae.ErrorCode() != "AccessDenied" {
		return data, err
	}
	out, lerr := l.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(l.bucket), Prefix: aws.String(key), MaxKeys: aws.Int32(1)})
	if lerr != nil || len(out.Contents) > 0 && aws.ToString(out.Contents[0].Key) == key {
		return nil, err
	}
	return nil, fmt.Errorf("get s3://%s/%s: denied, and not listed: %w", l.bucket, key, store.ErrNotFound)
}
