package store_test

import (
	"bytes"
	"context"
	"fmt"
	"hash/crc32"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/stretchr/testify/require"

	"benchling-webhook/internal/exitcode"
	"benchling-webhook/internal/store"
)

// TestS3List: one listing below a prefix gives every key (past a page of
// 1,000) with the ETag and size the Put returned, and nothing outside it.
func TestS3List(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	s := e.sink()
	put := func(key string, b []byte) string {
		o, err := s.Put(ctx, key, bytes.NewReader(b), int64(len(b)), crc32.ChecksumIEEE(b))
		require.NoError(t, err)
		return o.ETag
	}
	want := map[string]string{}
	for i := range 1003 {
		k := fmt.Sprintf("benchling/etr_a/f%04d.txt", i)
		want[k] = put(k, []byte(k))
	}
	put("benchling/etr_ab/other.txt", []byte("not below etr_a/"))
	put("benchling/.packaging/etr_a/record.json", []byte("{}"))

	objs, err := s.List(ctx, "benchling/etr_a/")
	require.NoError(t, err)
	require.Len(t, objs, len(want))
	require.True(t, slices.IsSortedFunc(objs, func(a, b store.ObjectInfo) int { return strings.Compare(a.Key, b.Key) }))
	for _, o := range objs {
		require.Equal(t, want[o.Key], o.ETag, o.Key)
		require.Equal(t, int64(len(o.Key)), o.Size, o.Key)
		require.False(t, o.LastModified.IsZero())
	}

	none, err := s.List(ctx, "benchling/etr_none/")
	require.NoError(t, err)
	require.Empty(t, none)

	_, err = store.NewS3(e.client, store.S3Options{Bucket: "no-such-bucket"}).List(ctx, "benchling/")
	require.Error(t, err)
	require.Equal(t, exitcode.Usage, exitcode.Resolve(err), "no such bucket: configuration")
}

// TestS3Uploads: uploads are listed below a prefix only, with their
// initiation time, and aborted; aborting one that is gone is no error.
func TestS3Uploads(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	s := e.sink()
	start := func(key string) string {
		out, err := e.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(e.bucket), Key: aws.String(key)})
		require.NoError(t, err)
		return aws.ToString(out.UploadId)
	}
	before := time.Now().Add(-time.Minute)
	a1 := start("benchling/etr_a/big.bin")
	a2 := start("benchling/etr_a/big.bin") // the same key twice: two uploads
	b := start("benchling/etr_b/big.bin")
	outside := start("elsewhere/etr_a/big.bin")

	ups, err := s.ListUploads(ctx, "benchling/")
	require.NoError(t, err)
	var ids []string
	for _, u := range ups {
		require.True(t, strings.HasPrefix(u.Key, "benchling/"), u.Key)
		require.True(t, u.Initiated.After(before), "initiated %s", u.Initiated)
		ids = append(ids, u.UploadID)
	}
	require.ElementsMatch(t, []string{a1, a2, b}, ids)

	for _, u := range ups {
		require.NoError(t, s.AbortUpload(ctx, u.Key, u.UploadID))
	}
	ups, err = s.ListUploads(ctx, "benchling/")
	require.NoError(t, err)
	require.Empty(t, ups)
	require.NoError(t, s.AbortUpload(ctx, "benchling/etr_a/big.bin", a1), "already aborted: not an error")

	left, err := s.ListUploads(ctx, "elsewhere/")
	require.NoError(t, err)
	require.Len(t, left, 1)
	require.Equal(t, outside, left[0].UploadID)

	_, err = store.NewS3(e.client, store.S3Options{Bucket: "no-such-bucket"}).ListUploads(ctx, "benchling/")
	require.Equal(t, exitcode.Usage, exitcode.Resolve(err), "no such bucket: configuration: %v", err)
}

// TestS3UploadsPaginated: more uploads than one page are all listed,
// through the key and upload-id markers, as S3 documents them (the
// uploads of key-marker after upload-id-marker, then the keys after it).
// Against a fake: versitygw 1.8 refuses an upload-id-marker that is not
// an upload of the key after key-marker ("Invalid uploadId marker"),
// which is what S3 returns as the next markers, so it cannot list past a
// page (backend/mp-lister.go); under 1,000 uploads it needs no markers.
func TestS3UploadsPaginated(t *testing.T) {
	c := &uploadsClient{}
	for i := range 2500 {
		c.uploads = append(c.uploads, [2]string{fmt.Sprintf("benchling/etr_a/f%d", i/3), fmt.Sprintf("u%05d", i)})
	}
	slices.SortFunc(c.uploads, func(a, b [2]string) int { return strings.Compare(a[0]+" "+a[1], b[0]+" "+b[1]) })
	ups, err := store.NewS3(c, store.S3Options{Bucket: "registry"}).ListUploads(t.Context(), "benchling/")
	require.NoError(t, err)
	require.Len(t, ups, len(c.uploads))
	seen := map[string]bool{}
	for _, u := range ups {
		seen[u.UploadID] = true
	}
	require.Len(t, seen, len(c.uploads), "each upload once")
	require.Equal(t, 3, c.calls)
}

// uploadsClient lists uploads (key, id), sorted, 1,000 a page, by S3's
// marker rules.
type uploadsClient struct {
	store.S3API
	uploads [][2]string
	calls   int
}

func (c *uploadsClient) ListMultipartUploads(_ context.Context, in *s3.ListMultipartUploadsInput, _ ...func(*s3.Options)) (*s3.ListMultipartUploadsOutput, error) {
	c.calls++
	km, um := aws.ToString(in.KeyMarker), aws.ToString(in.UploadIdMarker)
	out := &s3.ListMultipartUploadsOutput{}
	for _, u := range c.uploads {
		if km != "" && (u[0] < km || u[0] == km && (um == "" || u[1] <= um)) {
			continue
		}
		if len(out.Uploads) == 1000 {
			out.IsTruncated = aws.Bool(true)
			last := out.Uploads[len(out.Uploads)-1]
			out.NextKeyMarker, out.NextUploadIdMarker = last.Key, last.UploadId
			break
		}
		out.Uploads = append(out.Uploads, s3types.MultipartUpload{Key: aws.String(u[0]), UploadId: aws.String(u[1]), Initiated: aws.Time(time.Now())})
	}
	return out, nil
}
