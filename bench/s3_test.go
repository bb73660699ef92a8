package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"benchling-webhook/internal/testkit/samplezip"
)

// newS3Client builds the client the baseline and ceiling processes upload
// with. It copies newS3Client in internal/cli/export.go, so all three
// implementations use the same SDK settings: the standard configuration
// chain (AWS_ENDPOINT_URL_S3, AWS_CA_BUNDLE, ...), default checksum
// settings, 8 attempts unless AWS_MAX_ATTEMPTS is set, and path-style
// addressing when an endpoint is set.
func newS3Client(ctx context.Context) (*s3.Client, error) {
	var opts []func(*config.LoadOptions) error
	if _, ok := os.LookupEnv("AWS_MAX_ATTEMPTS"); !ok {
		opts = append(opts, config.WithRetryMaxAttempts(8))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return nil, errors.New("no AWS region: set AWS_REGION")
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		if o.BaseEndpoint != nil || cfg.BaseEndpoint != nil {
			o.UsePathStyle = true
		}
	}), nil
}

// objectKey is the key an entry lands at below prefix, as the job makes it.
func objectKey(prefix, name string) string { return prefix + "/" + name }

// listSizes returns the size of every object below prefix/, by key.
func listSizes(ctx context.Context, c *s3.Client, bucket, prefix string) (map[string]int64, error) {
	sizes := make(map[string]int64)
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix + "/")})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list s3://%s/%s/: %w", bucket, prefix, err)
		}
		for _, o := range page.Contents {
			sizes[aws.ToString(o.Key)] = aws.ToInt64(o.Size)
		}
	}
	return sizes, nil
}

// spotChecks is how many entries verify checks with HeadObject, besides
// the first, the last and the largest.
const spotChecks = 5

// verify checks what an implementation stored below prefix without
// reading it back: one object per manifest entry, each listed with the
// entry's size, and HeadObject on a few of them (the first, the last, the
// largest and a few spread evenly) agreeing on the size.
func verify(ctx context.Context, c *s3.Client, bucket, prefix string, m samplezip.Manifest) error {
	sizes, err := listSizes(ctx, c, bucket, prefix)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	if len(sizes) != len(m.Entries) {
		return fmt.Errorf("verify: %d objects below s3://%s/%s/, want %d (one per entry)", len(sizes), bucket, prefix, len(m.Entries))
	}
	var errs []error
	for _, e := range m.Entries {
		key := objectKey(prefix, e.Name)
		got, ok := sizes[key]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("verify: s3://%s/%s is missing", bucket, key))
		case got != e.Size:
			errs = append(errs, fmt.Errorf("verify: s3://%s/%s is listed with %d bytes, want %d", bucket, key, got, e.Size))
		}
		if len(errs) >= 5 {
			break
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	for _, i := range spotIndexes(m) {
		e := m.Entries[i]
		key := objectKey(prefix, e.Name)
		out, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err != nil {
			return fmt.Errorf("verify: head s3://%s/%s: %w", bucket, key, err)
		}
		if got := aws.ToInt64(out.ContentLength); got != e.Size {
			return fmt.Errorf("verify: s3://%s/%s has %d bytes, want %d", bucket, key, got, e.Size)
		}
	}
	return nil
}

// spotIndexes picks the entries verify heads: the first, the last, the
// largest and spotChecks spread evenly.
func spotIndexes(m samplezip.Manifest) []int {
	n := len(m.Entries)
	if n == 0 {
		return nil
	}
	largest := 0
	for i, e := range m.Entries {
		if e.Size > m.Entries[largest].Size {
			largest = i
		}
	}
	idx := []int{0, n - 1, largest}
	for k := 1; k <= spotChecks; k++ {
		idx = append(idx, k*n/(spotChecks+1))
	}
	slices.Sort(idx)
	return slices.Compact(idx)
}

// clearPrefix deletes every object below prefix/ and aborts every pending
// multipart upload in the bucket, so the next iteration starts empty.
func clearPrefix(ctx context.Context, c *s3.Client, bucket, prefix string) error {
	sizes, err := listSizes(ctx, c, bucket, prefix)
	if err != nil {
		return fmt.Errorf("clear: %w", err)
	}
	keys := make([]string, 0, len(sizes))
	for k := range sizes {
		keys = append(keys, k)
	}
	if err := deleteKeys(ctx, c, bucket, keys); err != nil {
		return fmt.Errorf("clear: %w", err)
	}
	p := s3.NewListMultipartUploadsPaginator(c, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("clear: list multipart uploads in %s: %w", bucket, err)
		}
		for _, u := range page.Uploads {
			if _, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
				Bucket: aws.String(bucket), Key: u.Key, UploadId: u.UploadId,
			}); err != nil {
				return fmt.Errorf("clear: abort upload of s3://%s/%s: %w", bucket, aws.ToString(u.Key), err)
			}
		}
	}
	return nil
}

// deleteKeys removes keys with DeleteObjects, 1,000 at a time.
func deleteKeys(ctx context.Context, c *s3.Client, bucket string, keys []string) error {
	for start := 0; start < len(keys); start += 1000 {
		batch := keys[start:min(start+1000, len(keys))]
		ids := make([]s3types.ObjectIdentifier, len(batch))
		for i, k := range batch {
			ids[i] = s3types.ObjectIdentifier{Key: aws.String(k)}
		}
		out, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{
			Bucket: aws.String(bucket),
			Delete: &s3types.Delete{Objects: ids, Quiet: aws.Bool(true)},
		})
		if err != nil {
			return fmt.Errorf("delete %d objects from %s: %w", len(batch), bucket, err)
		}
		if len(out.Errors) > 0 {
			e := out.Errors[0]
			return fmt.Errorf("delete s3://%s/%s (and %d more): %s", bucket, aws.ToString(e.Key), len(out.Errors)-1, aws.ToString(e.Message))
		}
	}
	return nil
}
