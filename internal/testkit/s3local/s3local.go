// Package s3local runs a real S3 server, versitygw, over TLS on 127.0.0.1
// for tests, benchmarks and local runs; tests call [StartT].
// Design: docs/testkit.md#s3local-a-real-s3-server.
package s3local

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"benchling-webhook/internal/testkit/testenv"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
)

const (
	// region is the region versitygw reports by default.
	region = "us-east-1"
	// readyTimeout bounds how long Start waits for the server to answer.
	readyTimeout = 30 * time.Second
	// probeInterval is the pause between readiness probes.
	probeInterval = 25 * time.Millisecond
	// stopTimeout is how long Close waits after SIGTERM before SIGKILL.
	stopTimeout = time.Second
	// bindAttempts is how many ports Start tries when the chosen one was
	// taken between picking it and versitygw binding it.
	bindAttempts = 4
	// tailSize is how much of versitygw's output is kept for error messages.
	tailSize = 4 << 10
)

// Options configures [Start]. Dir is required; the zero value of every other
// field means "default".
type Options struct {
	// Binary is the path of the versitygw executable; "" means [FindBinary].
	Binary string
	// Dir holds the bucket root (Dir/root), the TLS key pair (Dir/tls.crt,
	// Dir/tls.key) and the server log (Dir/versitygw.log). It is created if
	// missing; the caller owns it and removes it after [Server.Close].
	Dir string
	// Stderr also receives versitygw's stdout and stderr, which always go
	// to Dir/versitygw.log; nil means the log file only.
	Stderr io.Writer
	// NoKeepAlive makes versitygw close the connection after every
	// request. By default it keeps connections open, as S3 does; without
	// that, every request (each part of a multipart upload too) pays a new
	// TLS handshake, which costs more CPU than a small upload itself.
	NoKeepAlive bool
}

// Server is a running versitygw process. The exported fields are set by
// [Start] and must not be changed. Its methods are safe for concurrent use;
// call [Server.Close] to stop the process.
type Server struct {
	// Endpoint is the base URL, "https://127.0.0.1:PORT".
	Endpoint string
	// CAFile is the absolute path of the PEM certificate the server
	// presents; it is self-signed, so it is also the CA bundle to trust.
	CAFile string
	// Region is the region the server answers for, "us-east-1".
	Region string
	// AccessKey is the root user's access key ID (random per server).
	AccessKey string
	// SecretKey is the root user's secret access key (random per server).
	SecretKey string

	root      string        // absolute bucket root directory
	versions  string        // absolute directory of older object versions
	logFile   string        // absolute path of the server log
	keepAlive bool          // run with --keep-alive
	cmd       *exec.Cmd     // the versitygw process
	done      chan struct{} // closed when cmd.Wait returns
	waitErr   error         // cmd.Wait's result, valid after done is closed
	tail      *tailBuffer   // last bytes of the server's output

	closeOnce sync.Once
	closeErr  error

	mu     sync.Mutex
	client *s3.Client // lazily built for the helper methods
}

// Start launches versitygw on a free 127.0.0.1 port with TLS and waits, at
// most 30 s and no longer than ctx allows, until it answers HTTPS requests.
// ctx bounds only the start-up: the process runs until [Server.Close].
// On failure the error includes the tail of the server's output.
func Start(ctx context.Context, opts Options) (*Server, error) {
	return start(ctx, opts, freeAddr)
}

// start is Start with the port picker as a parameter, so tests can hand
// out a taken port.
func start(ctx context.Context, opts Options, pickAddr func() (string, error)) (*Server, error) {
	if opts.Dir == "" {
		return nil, errors.New("start versitygw: Options.Dir is required")
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("start versitygw: resolve dir %s: %w", opts.Dir, err)
	}
	bin := opts.Binary
	if bin == "" {
		if bin, err = FindBinary(); err != nil {
			return nil, fmt.Errorf("start versitygw: %w", err)
		}
	} else if bin, err = checkBinary(bin); err != nil {
		return nil, fmt.Errorf("start versitygw: %w", err)
	}

	root := filepath.Join(dir, "root")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("start versitygw: create bucket root: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "versions"), 0o755); err != nil {
		return nil, fmt.Errorf("start versitygw: create versioning folder: %w", err)
	}
	certFile := filepath.Join(dir, "tls.crt")
	keyFile := filepath.Join(dir, "tls.key")
	if err := writeKeyPair(certFile, keyFile); err != nil {
		return nil, fmt.Errorf("start versitygw: %w", err)
	}
	caPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("start versitygw: read certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("start versitygw: parse generated certificate: no PEM certificate found")
	}
	access, err := randomHex(10)
	if err != nil {
		return nil, fmt.Errorf("start versitygw: %w", err)
	}
	secret, err := randomHex(20)
	if err != nil {
		return nil, fmt.Errorf("start versitygw: %w", err)
	}

	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	for attempt := 1; ; attempt++ {
		s := &Server{
			CAFile:    certFile,
			Region:    region,
			AccessKey: access,
			SecretKey: secret,
			root:      root,
			versions:  filepath.Join(dir, "versions"),
			logFile:   filepath.Join(dir, "versitygw.log"),
			keepAlive: !opts.NoKeepAlive,
		}
		addr, err := pickAddr()
		if err != nil {
			return nil, fmt.Errorf("start versitygw: %w", err)
		}
		err = s.launch(ctx, addr, bin, keyFile, opts.Stderr, pool)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, errAddrInUse) || attempt == bindAttempts {
			return nil, fmt.Errorf("start versitygw: %w", err)
		}
	}
}

// errAddrInUse marks a start that failed because the port was taken.
var errAddrInUse = errors.New("address already in use")

// launch starts the process on addr and waits until it is ready. On error
// the process has been stopped.
func (s *Server) launch(ctx context.Context, addr, bin, keyFile string, stderr io.Writer, pool *x509.CertPool) error {
	s.Endpoint = "https://" + addr

	logf, err := os.OpenFile(s.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open log %s: %w", s.logFile, err)
	}
	s.tail = &tailBuffer{max: tailSize}
	out := teeWriter{logf, s.tail}
	if stderr != nil {
		out = append(out, stderr)
	}

	args := []string{"--port", addr,
		"--access", s.AccessKey,
		"--secret", s.SecretKey,
		"--region", s.Region,
		"--cert", s.CAFile,
		"--key", keyFile,
		"--quiet"}
	if s.keepAlive {
		args = append(args, "--keep-alive")
	}
	// Buckets are versioned like Quilt's once versioning is enabled on
	// them ([Server.CreateBucket] does): versitygw keeps the old versions
	// in a folder of its own.
	args = append(args, "posix", "--versioning-dir", s.versions, s.root)
	cmd := exec.Command(bin, args...)
	cmd.Dir = s.root
	cmd.Env = childEnv(os.Environ())
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = testenv.ChildProcAttr() // no server outlives a killed test binary
	if err := cmd.Start(); err != nil {
		_ = logf.Close() // nothing was written
		return fmt.Errorf("run %s: %w", bin, err)
	}
	s.cmd = cmd
	s.done = make(chan struct{})
	go func() {
		s.waitErr = cmd.Wait() // returns after the output is copied
		_ = logf.Close()       // best effort: the log is a diagnostic aid
		close(s.done)
	}()

	if err := s.waitReady(ctx, pool); err != nil {
		_ = s.Close()
		tail := s.tail.String()
		if strings.Contains(tail, "address already in use") {
			return fmt.Errorf("listen on %s: %w", addr, errAddrInUse)
		}
		return fmt.Errorf("%w; server output (%s):\n%s", err, s.logFile, tail)
	}
	return nil
}

// waitReady polls the endpoint over TLS until an HTTP response arrives. The
// handshake verifies the server's certificate against pool, so a stranger
// that grabbed the port cannot pass for the server.
func (s *Server) waitReady(ctx context.Context, pool *x509.CertPool) error {
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		DisableKeepAlives: true, // no Proxy: the probe must reach 127.0.0.1 directly
	}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 2 * time.Second}
	tick := time.NewTicker(probeInterval)
	defer tick.Stop()
	// Cut an in-flight probe short when the process exits (a probe to a
	// port someone else holds can hang until its timeout).
	probeCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.done:
			cancel()
		case <-probeCtx.Done():
		}
	}()
	var lastErr error
	for {
		req, err := http.NewRequestWithContext(probeCtx, http.MethodGet, s.Endpoint+"/", nil)
		if err != nil {
			return fmt.Errorf("build readiness probe: %w", err)
		}
		resp, err := hc.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			return nil // any HTTP answer (403 without credentials) means ready
		}
		lastErr = err
		select {
		case <-s.done: // checked first: an exit also cancels probeCtx
			return fmt.Errorf("versitygw exited before becoming ready: %v", s.exitStatus())
		default:
		}
		select {
		case <-s.done:
			return fmt.Errorf("versitygw exited before becoming ready: %v", s.exitStatus())
		case <-ctx.Done():
			return fmt.Errorf("wait for %s to become ready: %w (last probe: %v)", s.Endpoint, ctx.Err(), lastErr)
		case <-tick.C:
		}
	}
}

// exitStatus describes how the process ended; call it after done is closed.
func (s *Server) exitStatus() string {
	if s.waitErr == nil {
		return "exit status 0"
	}
	return s.waitErr.Error()
}

// Close stops the server: SIGTERM, then SIGKILL if it has not exited after
// 5 s. It reports an error if the server had died on its own (it may have
// crashed mid-test) or had to be killed. It is safe to call more than once;
// later calls return the first result. It does not remove Options.Dir.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		if s.cmd == nil || s.done == nil {
			return
		}
		select {
		case <-s.done:
			s.closeErr = fmt.Errorf("stop versitygw: it had already exited: %s", s.exitStatus())
			return
		default:
		}
		if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			s.closeErr = fmt.Errorf("stop versitygw: send SIGTERM: %w", err)
		}
		timer := time.NewTimer(stopTimeout)
		defer timer.Stop()
		select {
		case <-s.done:
		case <-timer.C:
			// With keep-alive, versitygw waits for its clients' idle
			// connections to close; its data is temporary, so a kill is fine.
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	})
	return s.closeErr
}

// Env returns environment variables that point an AWS SDK or CLI child
// process at this server, isolated from the user's own AWS configuration.
func (s *Server) Env() []string {
	return []string{
		"AWS_ENDPOINT_URL_S3=" + s.Endpoint,
		"AWS_CA_BUNDLE=" + s.CAFile,
		"AWS_ACCESS_KEY_ID=" + s.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + s.SecretKey,
		"AWS_REGION=" + s.Region,
		"AWS_CONFIG_FILE=/nonexistent",
		"AWS_SHARED_CREDENTIALS_FILE=/nonexistent",
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// Config returns an AWS config for this server: static credentials, region,
// BaseEndpoint and the server's CA (via config.WithCustomCABundle, which
// wins over $AWS_CA_BUNDLE). Shared config and credentials files are not
// read. Checksum settings stay at the SDK defaults.
func (s *Server) Config(ctx context.Context) (aws.Config, error) {
	ca, err := os.ReadFile(s.CAFile)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load config for %s: read CA: %w", s.Endpoint, err)
	}
	access, secret := s.AccessKey, s.SecretKey
	cfg, err := config.LoadDefaultConfig(ctx,
		config.WithRegion(s.Region),
		config.WithBaseEndpoint(s.Endpoint),
		config.WithCustomCABundle(bytes.NewReader(ca)),
		config.WithSharedConfigFiles([]string{}),
		config.WithSharedCredentialsFiles([]string{}),
		config.WithCredentialsProvider(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: access, SecretAccessKey: secret, Source: "s3local"}, nil
		})),
	)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load config for %s: %w", s.Endpoint, err)
	}
	return cfg, nil
}

// Client returns a new path-style S3 client for this server.
func (s *Server) Client(ctx context.Context) (*s3.Client, error) {
	cfg, err := s.Config(ctx)
	if err != nil {
		return nil, err
	}
	endpoint := s.Endpoint
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.UsePathStyle = true
		o.BaseEndpoint = &endpoint // also wins over AWS_IGNORE_CONFIGURED_ENDPOINTS
	}), nil
}

// helperClient returns the client shared by the helper methods.
func (s *Server) helperClient(ctx context.Context) (*s3.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client == nil {
		c, err := s.Client(ctx)
		if err != nil {
			return nil, err
		}
		s.client = c
	}
	return s.client, nil
}

// CreateBucket creates a bucket with versioning enabled, as Quilt's
// buckets are.
func (s *Server) CreateBucket(ctx context.Context, name string) error {
	if err := s.CreateUnversionedBucket(ctx, name); err != nil {
		return err
	}
	c, err := s.helperClient(ctx)
	if err != nil {
		return fmt.Errorf("create bucket %s: %w", name, err)
	}
	if _, err := c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{
		Bucket:                  &name,
		VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled},
	}); err != nil {
		return fmt.Errorf("enable versioning on bucket %s: %w", name, err)
	}
	return nil
}

// CreateUnversionedBucket creates a bucket without versioning.
func (s *Server) CreateUnversionedBucket(ctx context.Context, name string) error {
	c, err := s.helperClient(ctx)
	if err != nil {
		return fmt.Errorf("create bucket %s: %w", name, err)
	}
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &name}); err != nil {
		return fmt.Errorf("create bucket %s: %w", name, err)
	}
	return nil
}

// Objects returns every object in bucket whose key starts with prefix,
// mapped from key to content. It reads whole objects into memory: it is
// meant for asserting what tests stored.
func (s *Server) Objects(ctx context.Context, bucket, prefix string) (map[string][]byte, error) {
	c, err := s.helperClient(ctx)
	if err != nil {
		return nil, fmt.Errorf("list objects in %s: %w", bucket, err)
	}
	objs := make(map[string][]byte)
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: &prefix})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list objects in %s: %w", bucket, err)
		}
		for _, o := range page.Contents {
			key := aws.ToString(o.Key)
			data, err := getObject(ctx, c, bucket, key)
			if err != nil {
				return nil, err
			}
			objs[key] = data
		}
	}
	return objs, nil
}

// getObject reads one whole object.
func getObject(ctx context.Context, c *s3.Client, bucket, key string) ([]byte, error) {
	// Multipart objects carry composite checksums, which the SDK cannot
	// validate and would warn about on every read.
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key}, func(o *s3.Options) {
		o.DisableLogOutputChecksumValidationSkipped = true
	})
	if err != nil {
		return nil, fmt.Errorf("get object %s/%s: %w", bucket, key, err)
	}
	defer out.Body.Close()
	data, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, fmt.Errorf("read object %s/%s: %w", bucket, key, err)
	}
	return data, nil
}

// PendingUploads returns the keys of the multipart uploads in bucket that
// were started and neither completed nor aborted, one entry per upload.
func (s *Server) PendingUploads(ctx context.Context, bucket string) ([]string, error) {
	c, err := s.helperClient(ctx)
	if err != nil {
		return nil, fmt.Errorf("list multipart uploads in %s: %w", bucket, err)
	}
	var keys []string
	p := s3.NewListMultipartUploadsPaginator(c, &s3.ListMultipartUploadsInput{Bucket: &bucket})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list multipart uploads in %s: %w", bucket, err)
		}
		for _, u := range page.Uploads {
			keys = append(keys, aws.ToString(u.Key))
		}
	}
	return keys, nil
}

// freeAddr returns a 127.0.0.1 address whose port was free a moment ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("pick free port: %w", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		return "", fmt.Errorf("pick free port: close listener: %w", err)
	}
	return addr, nil
}

// randomHex returns n random bytes as lower-case hex.
func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate credentials: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// childEnv drops versitygw's own settings (VGW_*, ROOT_*) from env so the
// developer's environment cannot change the server the flags describe.
func childEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if strings.HasPrefix(kv, "VGW_") || strings.HasPrefix(kv, "ROOT_ACCESS_KEY") || strings.HasPrefix(kv, "ROOT_SECRET") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// teeWriter writes to every writer and never fails, so one broken
// destination neither hides the output from the others nor stalls the
// child on a full pipe.
type teeWriter []io.Writer

// Write writes p to each writer, ignoring their errors.
func (t teeWriter) Write(p []byte) (int, error) {
	for _, w := range t {
		_, _ = w.Write(p)
	}
	return len(p), nil
}

// tailBuffer keeps the last max bytes written to it. It is safe for
// concurrent use.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

// Write appends p, dropping the oldest bytes beyond max.
func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

// String returns the kept bytes.
func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
