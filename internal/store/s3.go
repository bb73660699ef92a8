// Package store holds the places [extract.Run] writes to and reads small
// objects back from: an S3 bucket ([S3]) and a local folder ([Dir]). See
// docs/export.md.
package store

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	tmtypes "github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"benchling-webhook/internal/awserr"
	"benchling-webhook/internal/extract"
	"benchling-webhook/internal/quiltpkg"
)

// S3API is the part of the S3 client the store uses.
type S3API interface {
	transfermanager.S3APIClient
	DeleteObjects(ctx context.Context, in *s3.DeleteObjectsInput, opts ...func(*s3.Options)) (*s3.DeleteObjectsOutput, error)
	ListMultipartUploads(ctx context.Context, in *s3.ListMultipartUploadsInput, opts ...func(*s3.Options)) (*s3.ListMultipartUploadsOutput, error)
	CopyObject(ctx context.Context, in *s3.CopyObjectInput, opts ...func(*s3.Options)) (*s3.CopyObjectOutput, error)
	GetBucketVersioning(ctx context.Context, in *s3.GetBucketVersioningInput, opts ...func(*s3.Options)) (*s3.GetBucketVersioningOutput, error)
}

// S3Options configure an [S3] store.
type S3Options struct {
	// Bucket receives the objects.
	Bucket string
	// PartSize is the multipart part size (minimum and default 5 MiB... see
	// the CLI flag for the memory it costs). Entries above it are uploaded
	// in parts, each with its own CRC-32.
	PartSize int64
	// PartConcurrency is the number of parts of one entry uploaded at once
	// (default 1). One upload buffers (PartConcurrency+1) parts.
	PartConcurrency int
	// FailTimeout bounds the AbortMultipartUpload sent after a failure or a
	// cancellation (default 10 s).
	FailTimeout time.Duration
	// ContentType, if set, returns the Content-Type to store with the
	// object at key; "" leaves it to S3 (binary/octet-stream).
	ContentType func(key string) string
	// ListWhenDenied makes [S3.Get] and [S3.Head] check a key S3 denies
	// (AccessDenied; a HEAD's 403 Forbidden) by listing it: if the
	// listing works and does not show the key, they report [ErrNotFound].
	//
	// S3 answers a GetObject or HeadObject of a missing key with 403, not
	// 404, unless the caller may s3:ListBucket the bucket. A role that may
	// list only below a prefix (a condition on s3:prefix, which a
	// GetObject does not carry) would otherwise read every missing key as
	// a configuration error. A real denial stays one: the listing is
	// denied too, or shows the key.
	ListWhenDenied bool
}

// S3 stores and reads objects in a bucket: entries that fit in one part with a single
// PutObject, larger ones through the SDK's transfer manager as multipart
// uploads, which it aborts when the body fails. Either way the request
// carries the archive's CRC-32 of the whole entry, so S3 itself verifies
// that what it stored is what the archive holds. Safe for concurrent use.
type S3 struct {
	client S3API
	tm     *transfermanager.Client
	opts   S3Options
}

var _ extract.Sink = (*S3)(nil)

// NewS3 returns a store writing to opts.Bucket through client. Retries of
// throttling and 5xx answers are the SDK client's (configure them there).
func NewS3(client S3API, opts S3Options) *S3 {
	if opts.PartSize < 5<<20 {
		opts.PartSize = 5 << 20
	}
	if opts.PartConcurrency <= 0 {
		opts.PartConcurrency = 1
	}
	if opts.FailTimeout <= 0 {
		opts.FailTimeout = 10 * time.Second
	}
	tm := transfermanager.New(client, func(o *transfermanager.Options) {
		o.PartSizeBytes = opts.PartSize
		o.MultipartUploadThreshold = opts.PartSize
		o.Concurrency = opts.PartConcurrency
		o.FailTimeout = opts.FailTimeout
		o.ChecksumAlgorithm = tmtypes.ChecksumAlgorithmCrc32
	})
	return &S3{client: client, tm: tm, opts: opts}
}

// Put uploads body to key. A *bytes.Reader body (an entry already checked in
// memory) goes up with one PutObject; any other body streams as a
// multipart upload.
func (s *S3) Put(ctx context.Context, key string, body io.Reader, size int64, crc uint32) (extract.Object, error) {
	var contentType *string
	if s.opts.ContentType != nil {
		if ct := s.opts.ContentType(key); ct != "" {
			contentType = aws.String(ct)
		}
	}
	if br, ok := body.(*bytes.Reader); ok && size <= s.opts.PartSize {
		out, err := s.client.PutObject(ctx, &s3.PutObjectInput{
			Bucket:        aws.String(s.opts.Bucket),
			Key:           aws.String(key),
			Body:          br,
			ContentLength: aws.Int64(size),
			ChecksumCRC32: aws.String(crcBase64(crc)),
			ContentType:   contentType,
		})
		if err != nil {
			return extract.Object{}, awserr.S3(fmt.Errorf("store: put s3://%s/%s: %w", s.opts.Bucket, key, err))
		}
		return extract.Object{ETag: aws.ToString(out.ETag), VersionID: aws.ToString(out.VersionId)}, nil
	}
	// The archive's CRC-32 is the whole object's: S3 checks it (and the
	// size) when the upload completes, on top of the per-part checksums.
	out, err := s.tm.UploadObject(ctx, &transfermanager.UploadObjectInput{
		Bucket:            aws.String(s.opts.Bucket),
		Key:               aws.String(key),
		Body:              body,
		ContentLength:     aws.Int64(size),
		ChecksumAlgorithm: tmtypes.ChecksumAlgorithmCrc32,
		ChecksumType:      tmtypes.ChecksumTypeFullObject,
		ChecksumCRC32:     aws.String(crcBase64(crc)),
		MpuObjectSize:     aws.Int64(size),
		ContentType:       contentType,
	})
	if err != nil {
		return extract.Object{}, awserr.S3(fmt.Errorf("store: upload s3://%s/%s: %w", s.opts.Bucket, key, err))
	}
	return extract.Object{ETag: aws.ToString(out.ETag), VersionID: aws.ToString(out.VersionID)}, nil
}

// Get reads the object at key whole. It is meant for small metadata such
// as a package's entry.json, and refuses an object larger than max bytes
// ([ErrTooLarge], exit 3). A missing object is [ErrNotFound]; other
// errors carry the exit codes of [S3.Put]'s ([awserr.S3Code]): 2 for a
// configuration error (no such bucket, access denied), 4 for the rest
// (network, 5xx after the SDK's retries).
func (s *S3) Get(ctx context.Context, key string, max int64) ([]byte, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.opts.Bucket), Key: aws.String(key)})
	if err != nil {
		return nil, s.readError(ctx, "get", key, err)
	}
	defer out.Body.Close()
	if n := aws.ToInt64(out.ContentLength); n > max {
		return nil, fmt.Errorf("store: get s3://%s/%s: %d bytes, more than %d: %w", s.opts.Bucket, key, n, max, ErrTooLarge)
	}
	data, err := readAtMost(out.Body, max)
	if errors.Is(err, ErrTooLarge) {
		return nil, fmt.Errorf("store: get s3://%s/%s: more than %d bytes: %w", s.opts.Bucket, key, max, err)
	}
	if err != nil {
		return nil, awserr.S3(fmt.Errorf("store: get s3://%s/%s: %w", s.opts.Bucket, key, err))
	}
	return data, nil
}

// Head returns when the object at key was last written (to the second),
// without reading it. A missing object is [ErrNotFound] (a HEAD's 404 has
// no body: a missing bucket looks the same); other errors carry the exit
// codes of [S3.Get]'s.
func (s *S3) Head(ctx context.Context, key string) (time.Time, error) {
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.opts.Bucket), Key: aws.String(key)})
	if err != nil {
		return time.Time{}, s.readError(ctx, "head", key, err)
	}
	return aws.ToTime(out.LastModified), nil
}

// readError is the error of a Get or Head (verb) of key that S3 answered
// with err: [ErrNotFound] for a missing key, or for a denied one that a
// listing does not show ([S3Options.ListWhenDenied]); else err with its
// exit code.
func (s *S3) readError(ctx context.Context, verb, key string, err error) error {
	if awserr.IsNotFound(err) {
		return fmt.Errorf("store: %s s3://%s/%s: %w", verb, s.opts.Bucket, key, ErrNotFound)
	}
	err = awserr.S3(fmt.Errorf("store: %s s3://%s/%s: %w", verb, s.opts.Bucket, key, err))
	if !s.opts.ListWhenDenied || !awserr.IsAccessDenied(err) || !s.unlisted(ctx, key) {
		return err
	}
	return fmt.Errorf("store: %s s3://%s/%s: denied, and not listed: %w", verb, s.opts.Bucket, key, ErrNotFound)
}

// unlisted reports whether a listing of key works and does not show it.
func (s *S3) unlisted(ctx context.Context, key string) bool {
	out, err := s.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(s.opts.Bucket), Prefix: aws.String(key), MaxKeys: aws.Int32(1)})
	return err == nil && (len(out.Contents) == 0 || aws.ToString(out.Contents[0].Key) != key)
}

// Delete removes keys with DeleteObjects, 1,000 at a time.
func (s *S3) Delete(ctx context.Context, keys []string) error {
	var errs []error
	for start := 0; start < len(keys); start += 1000 {
		batch := keys[start:min(start+1000, len(keys))]
		ids := make([]s3types.ObjectIdentifier, len(batch))
		for i, k := range batch {
			ids[i] = s3types.ObjectIdentifier{Key: aws.String(k)}
		}
		out, err := s.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
			Bucket: aws.String(s.opts.Bucket),
			Delete: &s3types.Delete{Objects: ids, Quiet: aws.Bool(true)},
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("store: delete %d objects from %s: %w", len(batch), s.opts.Bucket, err))
			continue
		}
		for _, e := range out.Errors {
			errs = append(errs, fmt.Errorf("store: delete s3://%s/%s: %s", s.opts.Bucket, aws.ToString(e.Key), aws.ToString(e.Message)))
		}
	}
	return errors.Join(errs...)
}

// crcBase64 is the form S3 uses for x-amz-checksum-crc32: the big-endian
// bytes of the CRC, base64-encoded.
func crcBase64(crc uint32) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], crc)
	return base64.StdEncoding.EncodeToString(b[:])
}

// maxCopySize is the largest object one CopyObject copies (5 GiB).
const maxCopySize = 5 << 30

// ErrCannotRestore means an object cannot be put back as recorded: the
// bucket kept no version of it (an unversioned bucket), or it is larger
// than one CopyObject copies (5 GiB). It carries no exit code: the caller
// decides what an export that cannot roll back leaves.
var ErrCannotRestore = errors.New("store: cannot restore the recorded version")

// Restore makes the version of key that f records the current one again,
// with a CopyObject of that version onto the key (a new version with the
// same bytes), and returns f with the new ETag and version id. An object
// with no recorded version, or above 5 GiB, is [ErrCannotRestore].
func (s *S3) Restore(ctx context.Context, f quiltpkg.RecordFile) (quiltpkg.RecordFile, error) {
	if f.VersionID == "" {
		return f, fmt.Errorf("store: restore s3://%s/%s: no version recorded: %w", s.opts.Bucket, f.Key, ErrCannotRestore)
	}
	if f.Size > maxCopySize {
		return f, fmt.Errorf("store: restore s3://%s/%s: %d bytes, more than one CopyObject copies: %w", s.opts.Bucket, f.Key, f.Size, ErrCannotRestore)
	}
	src := s.opts.Bucket + "/" + url.PathEscape(f.Key) + "?versionId=" + url.QueryEscape(f.VersionID)
	src = strings.ReplaceAll(src, "%2F", "/")
	// REPLACE, with the store's content type: S3 refuses to copy the
	// current version onto itself otherwise (the run may not have
	// replaced it after all), and the copy keeps the store's content type.
	in := &s3.CopyObjectInput{
		Bucket:            aws.String(s.opts.Bucket),
		Key:               aws.String(f.Key),
		CopySource:        aws.String(src),
		MetadataDirective: s3types.MetadataDirectiveReplace,
		// No tags to carry (the store writes none), and COPY would need
		// s3:GetObjectVersionTagging as well.
		TaggingDirective: s3types.TaggingDirectiveReplace,
	}
	if s.opts.ContentType != nil {
		if ct := s.opts.ContentType(f.Key); ct != "" {
			in.ContentType = aws.String(ct)
		}
	}
	out, err := s.client.CopyObject(ctx, in)
	if err != nil {
		return f, awserr.S3(fmt.Errorf("store: restore s3://%s/%s version %s: %w", s.opts.Bucket, f.Key, f.VersionID, err))
	}
	if out.CopyObjectResult != nil {
		f.ETag = aws.ToString(out.CopyObjectResult.ETag)
	}
	f.VersionID = aws.ToString(out.VersionId)
	return f, nil
}

// Versioned reports whether the bucket keeps older versions of its
// objects (versioning enabled), with one GetBucketVersioning.
func (s *S3) Versioned(ctx context.Context) (bool, error) {
	out, err := s.client.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String(s.opts.Bucket)})
	if err != nil {
		return false, awserr.S3(fmt.Errorf("store: get versioning of bucket %s: %w", s.opts.Bucket, err))
	}
	return out.Status == s3types.BucketVersioningStatusEnabled, nil
}
