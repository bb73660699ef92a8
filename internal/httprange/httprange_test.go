package httprange

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"benchling-webhook/internal/exitcode"
	"benchling-webhook/internal/testkit/faultserver"
)

func content(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// fast keeps retries quick in tests.
func fast(o Options) Options {
	o.InitialBackoff = time.Millisecond
	o.MaxBackoff = 5 * time.Millisecond
	return o
}

func TestReadAtAndStream(t *testing.T) {
	data := content(3<<20 + 123)
	tests := map[string]struct {
		opts      faultserver.Options
		spool     bool
		wantSpool bool
	}{
		"range":             {},
		"no range, spooled": {opts: faultserver.Options{NoRange: true}, spool: true, wantSpool: true},
		"cut connections":   {opts: faultserver.Options{CutAfter: 100_000, CutTimes: 3}},
		"5xx then success":  {opts: faultserver.Options{FailFirst: 2}},
		"slow":              {opts: faultserver.Options{BytesPerSecond: 50 << 20}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			srv := faultserver.New(bytes.NewReader(data), int64(len(data)), tc.opts)
			defer srv.Close()
			o := fast(Options{TailSize: 64 << 10, BlockSize: 256 << 10})
			if tc.spool {
				o.MaxSpool = 10 << 20
				o.TempDir = t.TempDir()
			}
			src, err := Open(context.Background(), srv.FileURL(), o)
			require.NoError(t, err)
			defer src.Close()
			require.Equal(t, int64(len(data)), src.Size())
			require.Equal(t, tc.wantSpool, src.Stats().Spooled)

			// ReadAt at the tail (cached), in the middle (a block miss), across the end.
			for _, c := range []struct{ off, n int64 }{{int64(len(data)) - 1000, 1000}, {12345, 5000}, {1 << 20, 300 << 10}, {0, 30}} {
				p := make([]byte, c.n)
				n, err := src.ReadAt(p, c.off)
				require.NoError(t, err)
				require.Equal(t, int(c.n), n)
				require.Equal(t, data[c.off:c.off+c.n], p)
			}
			p := make([]byte, 100)
			n, err := src.ReadAt(p, int64(len(data))-10)
			require.ErrorIs(t, err, io.EOF)
			require.Equal(t, 10, n)

			// A stream over most of the file.
			rc := src.Stream(context.Background(), 100, int64(len(data))-200)
			got, err := io.ReadAll(rc)
			require.NoError(t, err)
			require.NoError(t, rc.Close())
			require.Equal(t, data[100:len(data)-100], got)
			if tc.opts.CutAfter > 0 || tc.opts.FailFirst > 0 {
				require.Positive(t, src.Stats().Retries)
			}
		})
	}
}

func TestStreamBytesFetchedOnce(t *testing.T) {
	data := content(8 << 20)
	srv := faultserver.New(bytes.NewReader(data), int64(len(data)), faultserver.Options{})
	defer srv.Close()
	src, err := Open(context.Background(), srv.FileURL(), Options{TailSize: 64 << 10})
	require.NoError(t, err)
	defer src.Close()
	rc := src.Stream(context.Background(), 0, int64(len(data))-64<<10)
	_, err = io.Copy(io.Discard, rc)
	require.NoError(t, err)
	rc.Close()
	// The tail came with Open; the stream read the rest once.
	st := src.Stats()
	require.Equal(t, int64(2), st.Requests)
	require.Equal(t, int64(len(data)), st.BytesFetched)
	// The server's handler counts a write after the client may have read it.
	require.Eventually(t, func() bool { return srv.BytesSent() == st.BytesFetched }, 5*time.Second, 10*time.Millisecond,
		"the server counts what the client counts: %d vs %d", srv.BytesSent(), st.BytesFetched)
}

func TestStreamFromTailCache(t *testing.T) {
	data := content(10_000)
	srv := faultserver.New(bytes.NewReader(data), int64(len(data)), faultserver.Options{})
	defer srv.Close()
	src, err := Open(context.Background(), srv.FileURL(), Options{})
	require.NoError(t, err)
	defer src.Close()
	got, err := io.ReadAll(src.Stream(context.Background(), 0, int64(len(data))))
	require.NoError(t, err)
	require.Equal(t, data, got)
	require.Equal(t, int64(1), srv.Requests(), "a small file is read with its first request")
}

func TestErrors(t *testing.T) {
	data := content(100_000)
	tests := map[string]struct {
		opts     faultserver.Options
		spool    int64
		wantErr  error
		wantCode int
		wantText string
		maxReqs  int64
	}{
		"403 expired link":   {opts: faultserver.Options{Status: 403}, wantErr: ErrLinkExpired, wantCode: exitcode.BadInput, wantText: "Request has expired", maxReqs: 1},
		"404":                {opts: faultserver.Options{Status: 404}, wantErr: ErrLinkExpired, wantCode: exitcode.BadInput, wantText: "NoSuchKey", maxReqs: 1},
		"400":                {opts: faultserver.Options{Status: 400}, wantErr: ErrRefused, wantCode: exitcode.BadInput, maxReqs: 1},
		"500 forever":        {opts: faultserver.Options{Status: 500}, wantErr: ErrUnavailable, wantCode: exitcode.Transient, maxReqs: 6},
		"no range, too big":  {opts: faultserver.Options{NoRange: true}, spool: 1000, wantErr: ErrTooLarge, wantCode: exitcode.BadInput},
		"no range, no spool": {opts: faultserver.Options{NoRange: true}, wantCode: exitcode.Usage},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			srv := faultserver.New(bytes.NewReader(data), int64(len(data)), tc.opts)
			defer srv.Close()
			_, err := Open(context.Background(), srv.FileURL()+"?X-Amz-Signature=secret", fast(Options{MaxSpool: tc.spool, TempDir: t.TempDir()}))
			require.Error(t, err)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
			}
			require.Equal(t, tc.wantCode, exitcode.Resolve(err), "error: %v", err)
			require.NotContains(t, err.Error(), "secret", "the presigned signature must not leak into errors")
			require.NotContains(t, err.Error(), "\n")
			if tc.wantText != "" {
				require.Contains(t, err.Error(), tc.wantText)
			}
			if tc.maxReqs > 0 {
				require.LessOrEqual(t, srv.Requests(), tc.maxReqs)
			}
		})
	}
}

func TestStreamResumesAfterCuts(t *testing.T) {
	data := content(2 << 20)
	srv := faultserver.New(bytes.NewReader(data), int64(len(data)), faultserver.Options{CutAfter: 64 << 10, CutTimes: 20})
	defer srv.Close()
	src, err := Open(context.Background(), srv.FileURL(), fast(Options{TailSize: 1024, MaxTries: 30}))
	require.NoError(t, err)
	defer src.Close()
	got, err := io.ReadAll(src.Stream(context.Background(), 0, int64(len(data))))
	require.NoError(t, err)
	require.Equal(t, data, got)
	require.GreaterOrEqual(t, src.Stats().Retries, int64(19))
}

func TestStreamGivesUpAfterTooManyCuts(t *testing.T) {
	data := content(2 << 20)
	srv := faultserver.New(bytes.NewReader(data), int64(len(data)), faultserver.Options{CutAfter: 1, CutTimes: 1000})
	defer srv.Close()
	src, err := Open(context.Background(), srv.FileURL(), fast(Options{TailSize: 1024}))
	require.NoError(t, err)
	defer src.Close()
	// Every attempt makes one byte of progress: the total resume budget ends it.
	_, err = io.ReadAll(src.Stream(context.Background(), 0, int64(len(data))))
	require.ErrorIs(t, err, ErrUnavailable)
	require.Equal(t, exitcode.Transient, exitcode.Resolve(err))
	require.Less(t, srv.Requests(), int64(100))
}

func TestStreamNoProgressFails(t *testing.T) {
	// A server that accepts the tail request and then answers 206 with no body bytes.
	data := content(50_000)
	var calls int
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		if calls == 1 {
			http.ServeContent(w, r, "x", time.Time{}, bytes.NewReader(data))
			return
		}
		w.Header().Set("Content-Range", "bytes 0-39999/50000")
		w.Header().Set("Content-Length", "40000")
		w.WriteHeader(http.StatusPartialContent)
		// then hang up
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	src, err := Open(context.Background(), srv.URL, fast(Options{TailSize: 10}))
	require.NoError(t, err)
	_, err = io.ReadAll(src.Stream(context.Background(), 0, 40_000))
	require.ErrorIs(t, err, ErrUnavailable)
	require.Equal(t, exitcode.Transient, exitcode.Resolve(err))
}

func TestStreamCancel(t *testing.T) {
	data := content(4 << 20)
	srv := faultserver.New(bytes.NewReader(data), int64(len(data)), faultserver.Options{BytesPerSecond: 256 << 10})
	defer srv.Close()
	src, err := Open(context.Background(), srv.FileURL(), Options{TailSize: 1024})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	rc := src.Stream(ctx, 0, int64(len(data))-1024)
	go func() { time.AfterFunc(100*time.Millisecond, cancel) }()
	start := time.Now()
	_, err = io.Copy(io.Discard, rc)
	require.ErrorIs(t, err, context.Canceled)
	require.Less(t, time.Since(start), 5*time.Second)
}

// TestStalledBodyResumes: a server that stops sending without closing the
// connection is cut off by the idle timeout and the stream resumes.
func TestStalledBodyResumes(t *testing.T) {
	data := content(1 << 20)
	var calls atomic.Int32
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		if n == 2 || n == 3 { // the stream's first two attempts stall after 1000 bytes
			a, b, _ := strings.Cut(strings.TrimPrefix(r.Header.Get("Range"), "bytes="), "-")
			start, _ := strconv.Atoi(a)
			end, _ := strconv.Atoi(b)
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end, len(data)))
			w.Header().Set("Content-Length", strconv.Itoa(end-start+1))
			w.WriteHeader(http.StatusPartialContent)
			w.Write(data[start : start+1000])
			w.(http.Flusher).Flush()
			<-r.Context().Done() // then silence, with the connection open
			return
		}
		http.ServeContent(w, r, "x", time.Time{}, bytes.NewReader(data))
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	src, err := Open(context.Background(), srv.URL, fast(Options{TailSize: 1024, IdleTimeout: 100 * time.Millisecond}))
	require.NoError(t, err)
	got, err := io.ReadAll(src.Stream(context.Background(), 0, 100_000))
	require.NoError(t, err)
	require.Equal(t, data[:100_000], got)
	require.GreaterOrEqual(t, src.Stats().Retries, int64(2))
	require.Equal(t, int32(4), calls.Load())
}

// TestStalledSpool: a server without Range support that stops sending in
// the middle of the body does not hang Open.
func TestStalledSpool(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100000")
		w.WriteHeader(http.StatusOK)
		w.Write(make([]byte, 1000))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	start := time.Now()
	_, err := Open(context.Background(), srv.URL, fast(Options{MaxSpool: 1 << 20, TempDir: t.TempDir(), IdleTimeout: 100 * time.Millisecond}))
	require.Error(t, err)
	require.Equal(t, exitcode.Transient, exitcode.Resolve(err), "%v", err)
	require.Less(t, time.Since(start), 5*time.Second)
}

func TestChangedFile(t *testing.T) {
	data := content(3 << 20)
	etag := `"one"`
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", etag)
		http.ServeContent(w, r, "x", time.Time{}, bytes.NewReader(data))
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	src, err := Open(context.Background(), srv.URL, Options{TailSize: 1024})
	require.NoError(t, err)
	etag = `"two"`
	_, err = io.ReadAll(src.Stream(context.Background(), 0, 1<<20))
	require.ErrorIs(t, err, ErrChanged)
}

func TestLocalFile(t *testing.T) {
	data := content(5000)
	p := filepath.Join(t.TempDir(), "a.zip")
	require.NoError(t, os.WriteFile(p, data, 0o644))
	for _, u := range []string{p, "file://" + p} {
		src, err := Open(context.Background(), u, Options{})
		require.NoError(t, err)
		require.Equal(t, int64(5000), src.Size())
		got, err := io.ReadAll(src.Stream(context.Background(), 10, 100))
		require.NoError(t, err)
		require.Equal(t, data[10:110], got)
		require.NoError(t, src.Close())
	}
	_, err := Open(context.Background(), filepath.Join(t.TempDir(), "missing.zip"), Options{})
	require.Equal(t, exitcode.Usage, exitcode.Resolve(err))
	_, err = Open(context.Background(), "ftp://x/y.zip", Options{})
	require.Equal(t, exitcode.Usage, exitcode.Resolve(err))
}

func TestEmpty(t *testing.T) {
	srv := faultserver.New(bytes.NewReader(nil), 0, faultserver.Options{})
	defer srv.Close()
	_, err := Open(context.Background(), srv.FileURL(), Options{})
	require.ErrorIs(t, err, ErrEmpty)
}

func TestParseContentRange(t *testing.T) {
	tests := map[string]struct {
		in               string
		start, end, size int64
		ok               bool
	}{
		"ok":        {"bytes 0-9/100", 0, 9, 100, true},
		"last byte": {"bytes 99-99/100", 99, 99, 100, true},
		"unknown":   {"bytes 0-9/*", 0, 0, 0, false},
		"reversed":  {"bytes 9-0/100", 0, 0, 0, false},
		"past end":  {"bytes 0-100/100", 0, 0, 0, false},
		"unit":      {"items 0-9/100", 0, 0, 0, false},
		"empty":     {"", 0, 0, 0, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s, e, n, err := parseContentRange(tc.in)
			if !tc.ok {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, []int64{tc.start, tc.end, tc.size}, []int64{s, e, n})
		})
	}
}

func TestRedact(t *testing.T) {
	require.Equal(t, "https://b.s3.amazonaws.com/x.zip", Redact("https://user:pw@b.s3.amazonaws.com/x.zip?X-Amz-Signature=abc#f"))
	require.Equal(t, "/tmp/x.zip", Redact("/tmp/x.zip"))
}

func TestErrorDetail(t *testing.T) {
	resp := &http.Response{Body: io.NopCloser(strings.NewReader("<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"))}
	require.Equal(t, " (AccessDenied: Request has expired)", errorDetail(resp))
	resp = &http.Response{Body: io.NopCloser(strings.NewReader("plain\ntext"))}
	require.Equal(t, " (plain text)", errorDetail(resp))
	_ = errors.New
}
