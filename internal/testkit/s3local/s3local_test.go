package s3local_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	tmtypes "github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"benchling-webhook/internal/testkit/s3local"
	"benchling-webhook/internal/testkit/testenv"
)

const mib = 1 << 20

// payload returns n deterministic pseudo-random bytes.
func payload(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// nonSeekable hides every method of the reader but Read, so the SDK cannot
// seek, rewind or learn the length.
func nonSeekable(b []byte) io.Reader {
	half := len(b) / 2
	return io.MultiReader(bytes.NewReader(b[:half]), bytes.NewReader(b[half:]))
}

// crc32Base64 is the S3 wire form of a CRC-32/IEEE checksum: base64 of the
// big-endian value.
func crc32Base64(b []byte) string {
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], crc32.ChecksumIEEE(b))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// apiErrorCode returns the S3 error code in err, or "" if there is none.
func apiErrorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// newUploader returns a transfermanager client that switches to multipart
// at 5 MiB with 5 MiB parts, so 12 MiB becomes three parts.
func newUploader(c *s3.Client) *transfermanager.Client {
	return transfermanager.New(c, func(o *transfermanager.Options) {
		o.PartSizeBytes = 5 * mib
		o.MultipartUploadThreshold = 5 * mib
		o.Concurrency = 2
	})
}

func TestServer(t *testing.T) {
	srv := s3local.StartT(t)
	ctx := t.Context()
	c, err := srv.Client(ctx)
	require.NoError(t, err)
	const bucket = "bucket"
	require.NoError(t, srv.CreateBucket(ctx, bucket))

	small := payload(1, 300*1024+17)
	big := payload(2, 12*mib+12345)

	t.Run("PutObjectNonSeekable", func(t *testing.T) {
		// Over TLS the SDK streams a non-seekable body with aws-chunked
		// encoding and a trailing CRC32. Like AWS, the server still needs
		// the length: without ContentLength it answers 411
		// MissingContentLength.
		_, err := c.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String(bucket), Key: aws.String("put/small.bin"),
			Body:          nonSeekable(small),
			ContentLength: aws.Int64(int64(len(small))),
		})
		require.NoError(t, err)

		head, err := c.HeadObject(ctx, &s3.HeadObjectInput{
			Bucket: aws.String(bucket), Key: aws.String("put/small.bin"),
			ChecksumMode: types.ChecksumModeEnabled,
		})
		require.NoError(t, err)
		assert.Equal(t, crc32Base64(small), aws.ToString(head.ChecksumCRC32), "HeadObject CRC32")
		assert.Equal(t, types.ChecksumTypeFullObject, head.ChecksumType)
		assert.Equal(t, int64(len(small)), aws.ToInt64(head.ContentLength))
	})

	t.Run("MultipartNonSeekable", func(t *testing.T) {
		out, err := newUploader(c).UploadObject(ctx, &transfermanager.UploadObjectInput{
			Bucket: aws.String(bucket), Key: aws.String("mpu/big.bin"),
			Body: nonSeekable(big),
		})
		require.NoError(t, err)
		assert.True(t, strings.HasSuffix(strings.Trim(aws.ToString(out.ETag), `"`), "-3"), "three parts, ETag %s", aws.ToString(out.ETag))

		head, err := c.HeadObject(ctx, &s3.HeadObjectInput{
			Bucket: aws.String(bucket), Key: aws.String("mpu/big.bin"),
			ChecksumMode: types.ChecksumModeEnabled,
		})
		require.NoError(t, err)
		// The SDK default for multipart is a COMPOSITE CRC32 (a CRC of
		// the part CRCs, suffixed with the part count).
		assert.Equal(t, types.ChecksumTypeComposite, head.ChecksumType)
		assert.True(t, strings.HasSuffix(aws.ToString(head.ChecksumCRC32), "-3"), "composite CRC32 %q", aws.ToString(head.ChecksumCRC32))
		assert.Equal(t, int64(len(big)), aws.ToInt64(head.ContentLength))
	})

	t.Run("Objects", func(t *testing.T) {
		objs, err := srv.Objects(ctx, bucket, "")
		require.NoError(t, err)
		assert.ElementsMatch(t, []string{"put/small.bin", "mpu/big.bin"}, keys(objs))
		assert.True(t, bytes.Equal(small, objs["put/small.bin"]), "small object bytes differ")
		assert.True(t, bytes.Equal(big, objs["mpu/big.bin"]), "multipart object bytes differ")

		objs, err = srv.Objects(ctx, bucket, "mpu/")
		require.NoError(t, err)
		assert.Equal(t, []string{"mpu/big.bin"}, keys(objs))
	})

	t.Run("SuppliedCRC32", func(t *testing.T) {
		// The server verifies a CRC32 the client supplies, so a zip
		// entry's CRC-32 can be handed to S3 as the object checksum.
		data := payload(3, 64*1024)
		tests := map[string]struct {
			body     func() io.Reader
			sum      string
			wantCode string // "" means success
		}{
			"seekable right":     {body: func() io.Reader { return bytes.NewReader(data) }, sum: crc32Base64(data)},
			"seekable wrong":     {body: func() io.Reader { return bytes.NewReader(data) }, sum: crc32Base64(small), wantCode: "BadDigest"},
			"non-seekable right": {body: func() io.Reader { return nonSeekable(data) }, sum: crc32Base64(data)},
			"non-seekable wrong": {body: func() io.Reader { return nonSeekable(data) }, sum: crc32Base64(small), wantCode: "BadDigest"},
		}
		for name, tc := range tests {
			t.Run(name, func(t *testing.T) {
				key := "crc/" + strings.ReplaceAll(name, " ", "-")
				_, err := c.PutObject(ctx, &s3.PutObjectInput{
					Bucket: aws.String(bucket), Key: aws.String(key),
					Body:          tc.body(),
					ContentLength: aws.Int64(int64(len(data))),
					ChecksumCRC32: aws.String(tc.sum),
				}, func(o *s3.Options) { o.RetryMaxAttempts = 1 })
				objs, lerr := srv.Objects(ctx, bucket, key)
				require.NoError(t, lerr)
				if tc.wantCode != "" {
					require.Error(t, err)
					assert.Equal(t, tc.wantCode, apiErrorCode(err), "error: %v", err)
					assert.Empty(t, objs, "nothing stored for a rejected upload")
					return
				}
				require.NoError(t, err)
				assert.True(t, bytes.Equal(data, objs[key]), "stored bytes differ")
			})
		}
	})

	t.Run("FullObjectCRC32", func(t *testing.T) {
		// transfermanager with ChecksumType FULL_OBJECT and the whole
		// object's CRC32: multipart above the threshold, PutObject below.
		tests := map[string]struct {
			data     []byte
			sum      string
			wantCode string // "" means success
		}{
			"multipart right": {data: big, sum: crc32Base64(big)},
			"multipart wrong": {data: big, sum: crc32Base64(small), wantCode: "BadDigest"},
			"single right":    {data: small, sum: crc32Base64(small)},
			"single wrong":    {data: small, sum: crc32Base64(big), wantCode: "BadDigest"},
		}
		for name, tc := range tests {
			t.Run(name, func(t *testing.T) {
				key := "full/" + strings.ReplaceAll(name, " ", "-")
				out, err := newUploader(c).UploadObject(ctx, &transfermanager.UploadObjectInput{
					Bucket: aws.String(bucket), Key: aws.String(key),
					Body:              nonSeekable(tc.data),
					ChecksumAlgorithm: tmtypes.ChecksumAlgorithmCrc32,
					ChecksumType:      tmtypes.ChecksumTypeFullObject,
					ChecksumCRC32:     aws.String(tc.sum),
				})
				objs, lerr := srv.Objects(ctx, bucket, key)
				require.NoError(t, lerr)
				pending, perr := srv.PendingUploads(ctx, bucket)
				require.NoError(t, perr)
				assert.Empty(t, pending, "transfermanager aborts a failed multipart upload")
				if tc.wantCode != "" {
					require.Error(t, err)
					assert.Equal(t, tc.wantCode, apiErrorCode(err), "error: %v", err)
					assert.Empty(t, objs, "nothing stored for a rejected upload")
					return
				}
				require.NoError(t, err)
				assert.Equal(t, tc.sum, aws.ToString(out.ChecksumCRC32))
				assert.True(t, bytes.Equal(tc.data, objs[key]), "stored bytes differ")

				head, err := c.HeadObject(ctx, &s3.HeadObjectInput{
					Bucket: aws.String(bucket), Key: aws.String(key),
					ChecksumMode: types.ChecksumModeEnabled,
				})
				require.NoError(t, err)
				assert.Equal(t, types.ChecksumTypeFullObject, head.ChecksumType)
				assert.Equal(t, tc.sum, aws.ToString(head.ChecksumCRC32))
			})
		}
	})

	t.Run("PendingUploads", func(t *testing.T) {
		const key = "pending/x.bin"
		mpu, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		require.NoError(t, err)
		pending, err := srv.PendingUploads(ctx, bucket)
		require.NoError(t, err)
		assert.Equal(t, []string{key}, pending)

		_, err = c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: mpu.UploadId})
		require.NoError(t, err)
		pending, err = srv.PendingUploads(ctx, bucket)
		require.NoError(t, err)
		assert.Empty(t, pending)
	})
}

// TestEnvForChildProcess checks that Env alone is enough for an SDK user
// such as a child process: no Config, no custom CA pool in code.
func TestEnvForChildProcess(t *testing.T) {
	srv := s3local.StartT(t)
	ctx := t.Context()
	require.NoError(t, srv.CreateBucket(ctx, "envbucket"))
	for _, kv := range srv.Env() {
		k, v, ok := strings.Cut(kv, "=")
		require.True(t, ok, kv)
		t.Setenv(k, v)
	}
	t.Setenv("AWS_PROFILE", "")

	cfg, err := config.LoadDefaultConfig(ctx)
	require.NoError(t, err)
	c := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	_, err = c.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String("envbucket"), Key: aws.String("k"), Body: strings.NewReader("hello"),
	})
	require.NoError(t, err)
	objs, err := srv.Objects(ctx, "envbucket", "")
	require.NoError(t, err)
	assert.Equal(t, map[string][]byte{"k": []byte("hello")}, objs)
}

func TestEnv(t *testing.T) {
	srv := &s3local.Server{
		Endpoint: "https://127.0.0.1:1234", CAFile: "/tmp/x/tls.crt", Region: "us-east-1",
		AccessKey: "AK", SecretKey: "SK",
	}
	assert.Equal(t, []string{
		"AWS_ENDPOINT_URL_S3=https://127.0.0.1:1234",
		"AWS_CA_BUNDLE=/tmp/x/tls.crt",
		"AWS_ACCESS_KEY_ID=AK",
		"AWS_SECRET_ACCESS_KEY=SK",
		"AWS_REGION=us-east-1",
		"AWS_CONFIG_FILE=/nonexistent",
		"AWS_SHARED_CREDENTIALS_FILE=/nonexistent",
		"AWS_EC2_METADATA_DISABLED=true",
	}, srv.Env())
}

func TestStartAndClose(t *testing.T) {
	bin := binaryOrSkip(t)
	dir := t.TempDir()
	start := time.Now()
	srv, err := s3local.Start(t.Context(), s3local.Options{Binary: bin, Dir: dir})
	require.NoError(t, err)
	t.Logf("Start took %s", time.Since(start).Round(time.Millisecond))

	assert.True(t, strings.HasPrefix(srv.Endpoint, "https://127.0.0.1:"), srv.Endpoint)
	assert.True(t, filepath.IsAbs(srv.CAFile), srv.CAFile)
	assert.Equal(t, "us-east-1", srv.Region)
	assert.NotEmpty(t, srv.AccessKey)
	assert.NotEmpty(t, srv.SecretKey)
	assert.DirExists(t, filepath.Join(dir, "root"))
	assert.FileExists(t, filepath.Join(dir, "tls.key"))

	// The certificate is valid for the IP the endpoint names.
	pem, err := os.ReadFile(srv.CAFile)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(pem))
	host := strings.TrimPrefix(srv.Endpoint, "https://")
	conn, err := tls.Dial("tcp", host, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
	require.NoError(t, err, "TLS handshake verified against CAFile")
	require.NoError(t, conn.Close())

	// Without credentials the server answers 403: it is S3, not just a port.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	resp, err := hc.Get(srv.Endpoint + "/")
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	require.NoError(t, resp.Body.Close())
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	hc.CloseIdleConnections()

	closeStart := time.Now()
	require.NoError(t, srv.Close())
	t.Logf("Close took %s", time.Since(closeStart).Round(time.Millisecond))
	require.NoError(t, srv.Close(), "second Close is a no-op")

	_, err = net.DialTimeout("tcp", host, time.Second)
	assert.Error(t, err, "port closed after Close")
}

func TestStartErrors(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "fake-versitygw")
	require.NoError(t, os.WriteFile(fake, []byte("#!/bin/sh\necho 'boom: bad flags' >&2\nexit 3\n"), 0o755))
	plain := filepath.Join(dir, "not-executable")
	require.NoError(t, os.WriteFile(plain, []byte("x"), 0o644))

	hang := filepath.Join(dir, "hang")
	require.NoError(t, os.WriteFile(hang, []byte("#!/bin/sh\necho listening soon\nexec sleep 60\n"), 0o755))

	tests := map[string]struct {
		opts        s3local.Options
		timeout     time.Duration // 0 means the test's own deadline
		wantNoBin   bool
		wantContain []string
		wantStderr  string
	}{
		"no dir": {
			opts:        s3local.Options{Binary: fake},
			wantContain: []string{"Options.Dir is required"},
		},
		"missing binary": {
			opts:        s3local.Options{Binary: filepath.Join(dir, "nope"), Dir: t.TempDir()},
			wantNoBin:   true,
			wantContain: []string{"make tools"},
		},
		"not executable": {
			opts:        s3local.Options{Binary: plain, Dir: t.TempDir()},
			wantNoBin:   true,
			wantContain: []string{"not an executable file"},
		},
		"exits early": {
			opts:        s3local.Options{Binary: fake, Dir: t.TempDir()},
			wantContain: []string{"exited before becoming ready", "exit status 3", "boom: bad flags"},
			wantStderr:  "boom: bad flags",
		},
		"never ready": {
			opts:        s3local.Options{Binary: hang, Dir: t.TempDir()},
			timeout:     300 * time.Millisecond,
			wantContain: []string{"become ready", "context deadline exceeded", "listening soon"},
			wantStderr:  "listening soon",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var stderr bytes.Buffer
			tc.opts.Stderr = &stderr
			ctx := t.Context()
			if tc.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.timeout)
				defer cancel()
			}
			srv, err := s3local.Start(ctx, tc.opts)
			require.Error(t, err)
			assert.Nil(t, srv)
			assert.Equal(t, tc.wantNoBin, errors.Is(err, s3local.ErrNoBinary), "errors.Is(err, ErrNoBinary): %v", err)
			for _, s := range tc.wantContain {
				assert.Contains(t, err.Error(), s)
			}
			assert.Contains(t, stderr.String(), tc.wantStderr, "output is copied to Options.Stderr")
		})
	}
}

func TestFindBinary(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "versitygw")
	require.NoError(t, os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755))

	t.Run("env set", func(t *testing.T) {
		t.Setenv(s3local.EnvBinary, exe)
		got, err := s3local.FindBinary()
		require.NoError(t, err)
		assert.Equal(t, exe, got)
	})
	t.Run("env points nowhere", func(t *testing.T) {
		t.Setenv(s3local.EnvBinary, filepath.Join(dir, "missing"))
		_, err := s3local.FindBinary()
		require.ErrorIs(t, err, s3local.ErrNoBinary)
		assert.Contains(t, err.Error(), "make tools")
	})
	t.Run("repo bin", func(t *testing.T) {
		t.Setenv(s3local.EnvBinary, "")
		got, err := s3local.FindBinary()
		if errors.Is(err, s3local.ErrNoBinary) {
			t.Skipf("versitygw not built: %v", err)
		}
		require.NoError(t, err)
		root, err := testenv.RepoRoot()
		require.NoError(t, err)
		assert.Equal(t, filepath.Join(root, "bin", "versitygw"), got)
	})
}

// binaryOrSkip returns the versitygw path, or skips (fails under
// BW_REQUIRE_S3=1 or CI=true) like StartT when it is missing.
func binaryOrSkip(t *testing.T) string {
	t.Helper()
	bin, err := s3local.FindBinary()
	testenv.Need(t, testenv.EnvRequireS3, err)
	return bin
}

// keys returns the sorted keys of m.
func keys(m map[string][]byte) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
