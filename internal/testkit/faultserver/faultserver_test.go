package faultserver_test

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"benchling-webhook/internal/testkit/faultserver"
)

// content returns n deterministic bytes.
func content(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

// step is one request of a table case and what it must get back.
type step struct {
	method  string            // "" means GET
	header  map[string]string // request headers
	status  int               // expected status
	body    []byte            // expected body; nil means "don't care"
	readErr error             // expected error reading the body
	want    map[string]string // expected response headers; "" means absent
	xmlCode string            // expected <Code> of an XML error body
	xmlMsg  string            // expected <Message> of an XML error body
}

// xmlError mirrors the S3 error body.
type xmlError struct {
	Code      string `xml:"Code"`
	Message   string `xml:"Message"`
	RequestID string `xml:"RequestId"`
}

func TestServer(t *testing.T) {
	const size = 100_000
	data := content(size)
	crange := func(first, last int) string { return fmt.Sprintf("bytes %d-%d/%d", first, last, size) }

	tests := map[string]struct {
		opts      faultserver.Options
		steps     []step
		wantBytes int64 // BytesSent after all steps
		wantRange int64 // RangeRequests after all steps
	}{
		"full GET": {
			steps: []step{{status: 200, body: data, want: map[string]string{
				"Accept-Ranges": "bytes", "Content-Length": strconv.Itoa(size), "Content-Type": "application/zip",
			}}},
			wantBytes: size,
		},
		"HEAD": {
			steps: []step{{method: http.MethodHead, status: 200, body: []byte{}, want: map[string]string{
				"Accept-Ranges": "bytes", "Content-Length": strconv.Itoa(size),
			}}},
		},
		"range": {
			steps: []step{{header: map[string]string{"Range": "bytes=100-199"}, status: 206, body: data[100:200],
				want: map[string]string{"Content-Range": crange(100, 199), "Content-Length": "100"}}},
			wantBytes: 100, wantRange: 1,
		},
		"open-ended range": {
			steps: []step{{header: map[string]string{"Range": "bytes=99990-"}, status: 206, body: data[99990:],
				want: map[string]string{"Content-Range": crange(99990, size-1)}}},
			wantBytes: 10, wantRange: 1,
		},
		"suffix range": {
			steps: []step{{header: map[string]string{"Range": "bytes=-22"}, status: 206, body: data[size-22:],
				want: map[string]string{"Content-Range": crange(size-22, size-1), "Content-Length": "22"}}},
			wantBytes: 22, wantRange: 1,
		},
		"unsatisfiable range": {
			steps: []step{{header: map[string]string{"Range": fmt.Sprintf("bytes=%d-", size)}, status: 416,
				want: map[string]string{"Content-Range": fmt.Sprintf("bytes */%d", size)}}},
			wantRange: 1,
		},
		"If-Range with a stale ETag": {
			steps:     []step{{header: map[string]string{"Range": "bytes=0-9", "If-Range": `"stale"`}, status: 200, body: data}},
			wantBytes: size, wantRange: 1,
		},
		"If-Range with the ETag": {
			opts: faultserver.Options{ETag: "v1"},
			steps: []step{{header: map[string]string{"Range": "bytes=0-9", "If-Range": `"v1"`}, status: 206, body: data[:10],
				want: map[string]string{"ETag": `"v1"`}}},
			wantBytes: 10, wantRange: 1,
		},
		"NoRange": {
			opts: faultserver.Options{NoRange: true},
			steps: []step{
				{header: map[string]string{"Range": "bytes=100-199"}, status: 200, body: data,
					want: map[string]string{"Accept-Ranges": "", "Content-Range": "", "Content-Length": strconv.Itoa(size)}},
				{method: http.MethodHead, status: 200, body: []byte{}, want: map[string]string{"Accept-Ranges": ""}},
			},
			wantBytes: size, wantRange: 1,
		},
		"FailFirst": {
			opts: faultserver.Options{FailFirst: 2},
			steps: []step{
				{status: 503, xmlCode: "SlowDown", want: map[string]string{"Content-Type": "application/xml"}},
				{method: http.MethodHead, status: 503, body: []byte{}},
				{header: map[string]string{"Range": "bytes=5-9"}, status: 206, body: data[5:10]},
			},
			wantBytes: 5, wantRange: 1,
		},
		"Status 403": {
			opts: faultserver.Options{Status: http.StatusForbidden},
			steps: []step{
				{status: 403, xmlCode: "AccessDenied", xmlMsg: "Request has expired", want: map[string]string{"Content-Type": "application/xml"}},
				{header: map[string]string{"Range": "bytes=0-9"}, status: 403, xmlCode: "AccessDenied"},
			},
			wantRange: 1,
		},
		"Status 404": {
			opts:  faultserver.Options{Status: http.StatusNotFound},
			steps: []step{{status: 404, xmlCode: "NoSuchKey"}},
		},
		"Status beats FailFirst": {
			opts:  faultserver.Options{Status: http.StatusInternalServerError, FailFirst: 1},
			steps: []step{{status: 500, xmlCode: "InternalError"}, {status: 500, xmlCode: "InternalError"}},
		},
		"method not allowed": {
			steps: []step{{method: http.MethodPut, status: 405, xmlCode: "MethodNotAllowed", want: map[string]string{"Allow": "GET, HEAD"}}},
		},
		"Cut": {
			opts: faultserver.Options{CutAfter: 1000, CutTimes: 2},
			steps: []step{
				{status: 200, body: data[:1000], readErr: io.ErrUnexpectedEOF, want: map[string]string{"Content-Length": strconv.Itoa(size)}},
				{header: map[string]string{"Range": "bytes=5000-9999"}, status: 206, body: data[5000:6000], readErr: io.ErrUnexpectedEOF},
				{status: 200, body: data},
			},
			wantBytes: 1000 + 1000 + size, wantRange: 1,
		},
		"Cut spares HEAD and short bodies": {
			opts: faultserver.Options{CutAfter: 1000}, // CutTimes 0 means 1
			steps: []step{
				{method: http.MethodHead, status: 200, body: []byte{}},
				{header: map[string]string{"Range": "bytes=0-999"}, status: 206, body: data[:1000]},
				{status: 200, body: data},
			},
			wantBytes: 1000 + size, wantRange: 1,
		},
		"Cut with NoRange": {
			opts: faultserver.Options{NoRange: true, CutAfter: 1},
			steps: []step{
				{status: 200, body: data[:1], readErr: io.ErrUnexpectedEOF},
				{status: 200, body: data},
			},
			wantBytes: 1 + size,
		},
		"FailFirst then Cut": {
			opts: faultserver.Options{FailFirst: 1, CutAfter: 10},
			steps: []step{
				{status: 503, xmlCode: "SlowDown"},
				{status: 200, body: data[:10], readErr: io.ErrUnexpectedEOF},
				{status: 200, body: data},
			},
			wantBytes: 10 + size,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := faultserver.New(bytes.NewReader(data), size, tc.opts)
			t.Cleanup(srv.Close)
			client := &http.Client{Transport: &http.Transport{}}
			t.Cleanup(client.CloseIdleConnections)

			for i, st := range tc.steps {
				method := st.method
				if method == "" {
					method = http.MethodGet
				}
				req, err := http.NewRequestWithContext(t.Context(), method, srv.FileURL(), nil)
				require.NoError(t, err)
				for k, v := range st.header {
					req.Header.Set(k, v)
				}
				resp, err := client.Do(req)
				require.NoError(t, err, "step %d", i)
				got, readErr := io.ReadAll(resp.Body)
				require.NoError(t, resp.Body.Close())

				assert.Equal(t, st.status, resp.StatusCode, "step %d status", i)
				if st.readErr != nil {
					assert.ErrorIs(t, readErr, st.readErr, "step %d read error", i)
				} else {
					assert.NoError(t, readErr, "step %d read error", i)
				}
				if st.body != nil {
					assert.True(t, bytes.Equal(st.body, got), "step %d body: got %d bytes, want %d", i, len(got), len(st.body))
				}
				for k, v := range st.want {
					if v == "" {
						assert.Empty(t, resp.Header.Values(k), "step %d header %s", i, k)
					} else {
						assert.Equal(t, v, resp.Header.Get(k), "step %d header %s", i, k)
					}
				}
				if st.xmlCode != "" {
					var e xmlError
					require.NoError(t, xml.Unmarshal(got, &e), "step %d XML body %q", i, got)
					assert.Equal(t, st.xmlCode, e.Code, "step %d <Code>", i)
					assert.NotEmpty(t, e.RequestID, "step %d <RequestId>", i)
					if st.xmlMsg != "" {
						assert.Equal(t, st.xmlMsg, e.Message, "step %d <Message>", i)
					}
				}
			}
			assert.Equal(t, int64(len(tc.steps)), srv.Requests(), "Requests")
			assert.Equal(t, tc.wantBytes, srv.BytesSent(), "BytesSent")
			assert.Equal(t, tc.wantRange, srv.RangeRequests(), "RangeRequests")
		})
	}
}

func TestThrottle(t *testing.T) {
	const (
		size = 60_000
		rate = 400_000 // bytes per second: about 150 ms for the body
	)
	data := content(size)
	srv := faultserver.New(bytes.NewReader(data), size, faultserver.Options{BytesPerSecond: rate})
	t.Cleanup(srv.Close)

	start := time.Now()
	resp, err := http.Get(srv.FileURL())
	require.NoError(t, err)
	got, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	elapsed := time.Since(start)

	assert.True(t, bytes.Equal(data, got), "throttled body differs")
	assert.Equal(t, int64(size), srv.BytesSent())
	// The last chunk (rate/50 bytes) is due at (size-rate/50)/rate; the
	// pacing waits at least that long. Only the lower bound is reliable.
	minWait := time.Duration(float64(size-rate/50) / rate * float64(time.Second))
	assert.GreaterOrEqual(t, elapsed, minWait, "elapsed %s", elapsed)
	t.Logf("%d bytes at %d B/s took %s (lower bound %s)", size, rate, elapsed, minWait)
}

func TestThrottleStopsOnClose(t *testing.T) {
	// 1 MB at 10 kB/s would take 100 s; Close must not wait for it.
	data := content(1_000_000)
	srv := faultserver.New(bytes.NewReader(data), int64(len(data)), faultserver.Options{BytesPerSecond: 10_000})
	resp, err := http.Get(srv.FileURL())
	require.NoError(t, err)
	buf := make([]byte, 100)
	_, err = io.ReadFull(resp.Body, buf)
	require.NoError(t, err)

	done := make(chan struct{})
	go func() {
		srv.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return while a throttled body was in flight")
	}
	_, err = io.ReadAll(resp.Body)
	assert.Error(t, err, "the cut-off body ends with an error")
	_ = resp.Body.Close()
}

func TestNewFile(t *testing.T) {
	data := content(12345)
	path := filepath.Join(t.TempDir(), "export.zip")
	require.NoError(t, os.WriteFile(path, data, 0o644))
	mtime := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	require.NoError(t, os.Chtimes(path, mtime, mtime))

	srv, err := faultserver.NewFile(path, faultserver.Options{})
	require.NoError(t, err)
	t.Cleanup(srv.Close)
	assert.Equal(t, srv.URL+"/export.zip", srv.FileURL())

	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.FileURL(), nil)
	require.NoError(t, err)
	req.Header.Set("Range", "bytes=-45")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	got, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	assert.Equal(t, http.StatusPartialContent, resp.StatusCode)
	assert.Equal(t, data[len(data)-45:], got)
	assert.Equal(t, mtime.Format(http.TimeFormat), resp.Header.Get("Last-Modified"))
	assert.Equal(t, srv.Handler().ETag(), resp.Header.Get("ETag"))
	assert.Regexp(t, `^"[0-9a-f]+-[0-9a-f]+"$`, resp.Header.Get("ETag"))

	_, err = faultserver.NewFile(filepath.Join(t.TempDir(), "missing.zip"), faultserver.Options{})
	assert.ErrorIs(t, err, os.ErrNotExist)
	_, err = faultserver.NewFile(t.TempDir(), faultserver.Options{})
	assert.ErrorContains(t, err, "not a regular file")
}

func TestETagOption(t *testing.T) {
	tests := map[string]struct{ in, want string }{
		"bare":   {in: "abc", want: `"abc"`},
		"quoted": {in: `"abc"`, want: `"abc"`},
		"weak":   {in: `W/"abc"`, want: `W/"abc"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := faultserver.Handler(bytes.NewReader(nil), 0, faultserver.Options{ETag: tc.in})
			assert.Equal(t, tc.want, h.ETag())
		})
	}
}

// TestHandlerConcurrent serves the handler from the test's own server and
// checks the counters under concurrent range requests (run with -race).
func TestHandlerConcurrent(t *testing.T) {
	const (
		size    = 64 << 10
		workers = 8
		each    = 16
		chunk   = 1000
	)
	data := content(size)
	h := faultserver.Handler(bytes.NewReader(data), size, faultserver.Options{})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				off := ((w*each + i) * chunk) % (size - chunk)
				if err := getRange(t, srv.URL+"/any/path", off, chunk, data[off:off+chunk]); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	assert.Equal(t, int64(workers*each), h.Requests())
	assert.Equal(t, int64(workers*each), h.RangeRequests())
	assert.Equal(t, int64(workers*each*chunk), h.BytesSent())
}

// getRange fetches n bytes at off and compares them with want.
func getRange(t *testing.T, url string, off, n int, want []byte) error {
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+n-1))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("get range %d+%d: %w", off, n, err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("read range %d+%d: %w", off, n, err)
	}
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(got, want) {
		return errors.New("range " + strconv.Itoa(off) + ": wrong answer " + resp.Status)
	}
	return nil
}
