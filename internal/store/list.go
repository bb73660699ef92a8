package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"benchling-webhook/internal/awserr"
)

// ObjectInfo is one object of a listing ([S3.List]).
type ObjectInfo struct {
	Key string
	// ETag is as S3 returns it, quoted ("\"9b2cf535f27731c974343645a3985328\"").
	ETag         string
	Size         int64
	LastModified time.Time
}

// Upload is a multipart upload that was started and neither completed nor
// aborted ([S3.ListUploads]).
type Upload struct {
	Key      string
	UploadID string
	// Initiated is when CreateMultipartUpload was called.
	Initiated time.Time
}

// maxListPages bounds one listing: 100,000 pages of 1,000 keys or uploads,
// far more than any package holds, so that a server that never ends its
// listing cannot keep a caller forever.
const maxListPages = 100_000

// List returns every object below prefix, with its ETag and size, in key
// order: one ListObjectsV2 per 1,000 keys. The role needs s3:ListBucket
// with an s3:prefix condition that allows prefix. Errors carry the exit
// codes of [S3.Get]'s.
func (s *S3) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	var out []ObjectInfo
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: aws.String(s.opts.Bucket), Prefix: aws.String(prefix)})
	for n := 0; p.HasMorePages(); n++ {
		if n == maxListPages {
			return nil, fmt.Errorf("store: list s3://%s/%s: more than %d pages", s.opts.Bucket, prefix, maxListPages)
		}
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, awserr.S3(fmt.Errorf("store: list s3://%s/%s: %w", s.opts.Bucket, prefix, err))
		}
		for _, o := range page.Contents {
			out = append(out, ObjectInfo{Key: aws.ToString(o.Key), ETag: aws.ToString(o.ETag), Size: aws.ToInt64(o.Size), LastModified: aws.ToTime(o.LastModified)})
		}
	}
	return out, nil
}

// ListUploads returns the multipart uploads in progress below prefix: one
// ListMultipartUploads per 1,000 uploads. The role needs
// s3:ListBucketMultipartUploads with an s3:prefix condition that allows
// prefix. Errors carry the exit codes of [S3.Get]'s.
func (s *S3) ListUploads(ctx context.Context, prefix string) ([]Upload, error) {
	var out []Upload
	in := &s3.ListMultipartUploadsInput{Bucket: aws.String(s.opts.Bucket), Prefix: aws.String(prefix)}
	for n := 0; ; n++ {
		if n == maxListPages {
			return nil, fmt.Errorf("store: list uploads s3://%s/%s: more than %d pages", s.opts.Bucket, prefix, maxListPages)
		}
		page, err := s.client.ListMultipartUploads(ctx, in)
		if err != nil {
			return nil, awserr.S3(fmt.Errorf("store: list uploads s3://%s/%s: %w", s.opts.Bucket, prefix, err))
		}
		for _, u := range page.Uploads {
			out = append(out, Upload{Key: aws.ToString(u.Key), UploadID: aws.ToString(u.UploadId), Initiated: aws.ToTime(u.Initiated)})
		}
		if !aws.ToBool(page.IsTruncated) || page.NextKeyMarker == nil && page.NextUploadIdMarker == nil {
			return out, nil
		}
		in.KeyMarker, in.UploadIdMarker = page.NextKeyMarker, page.NextUploadIdMarker
	}
}

// AbortUpload aborts the multipart upload uploadID of key, so that its
// parts are deleted (and no longer billed). An upload that is already
// gone (completed or aborted since it was listed: NoSuchUpload) is not an
// error. The role needs s3:AbortMultipartUpload on key. Errors carry the
// exit codes of [S3.Get]'s.
func (s *S3) AbortUpload(ctx context.Context, key, uploadID string) error {
	_, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
		Bucket: aws.String(s.opts.Bucket), Key: aws.String(key), UploadId: aws.String(uploadID),
	})
	var gone *s3types.NoSuchUpload
	var ae smithy.APIError
	switch {
	case err == nil, errors.As(err, &gone), errors.As(err, &ae) && ae.ErrorCode() == "NoSuchUpload":
		return nil
	}
	return awserr.S3(fmt.Errorf("store: abort upload %s of s3://%s/%s: %w", uploadID, s.opts.Bucket, key, err))
}
