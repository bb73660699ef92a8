package emulate

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"benchling-webhook/internal/testkit/testenv"

	"github.com/stretchr/testify/require"
)

// TestIdleOrdering checks by value that every client on the local stack
// gives up an idle connection before its server does (docs/architecture.md,
// "Local stack: connection lifetimes").
func TestIdleOrdering(t *testing.T) {
	require.Less(t, engineIdle.client, engineIdle.server, "hub client -> engine")
	// The Go servers (hub, gateway) keep idle connections forever; their
	// clients are Go's default transport (90 s), the SDK's (90 s) and
	// Node's fetch (4 s). Nor do they time out a new connection's first
	// request: ReadHeaderTimeout runs from the accept, so a client writing
	// late (the engine's event loop stalled) found the connection closed.
	s := &Stack{}
	for name, srv := range map[string]*http.Server{"hub": s.newServer(nil), "gateway": s.newServer(nil)} {
		require.Zero(t, srv.IdleTimeout, name)
		require.Zero(t, srv.ReadTimeout, name)
		require.Zero(t, srv.ReadHeaderTimeout, name)
	}
}

// TestEngineClientClosesFirst runs the engine with engineIdle scaled down
// and watches the one connection a request leaves idle: the Go client must
// close it, never the engine. With the ordering reversed the engine's EOF
// reaches the client first and the test fails.
func TestEngineClientClosesFirst(t *testing.T) {
	node, module, err := NodeTools("")
	testenv.Need(t, testenv.EnvRequireS3, err)
	const scale = 50
	idle := idleTimeouts{client: engineIdle.client / scale, server: engineIdle.server / scale}
	closed := make(chan string, 8)
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &watchedConn{Conn: c, closed: closed}, nil
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	e, err := startEngine(ctx, engineOptions{dir: t.TempDir(), node: node, module: module,
		hubURL: "http://127.0.0.1:1", idle: idle, dial: dial})
	require.NoError(t, err)
	defer e.close()

	require.NoError(t, e.post(ctx, "/stop", map[string]string{"arn": "none"}))
	select {
	case by := <-closed:
		require.Equal(t, "client", by, "the idle connection must be closed by the client (idle %s) before the engine (idle %s)", idle.client, idle.server)
	case <-time.After(idle.server + 10*time.Second):
		t.Fatal("the idle connection was never closed")
	}
}

// watchedConn reports on closed who ended the connection first: "client"
// (Close) or "server" (a read error before any Close).
type watchedConn struct {
	net.Conn
	closed  chan<- string
	closing atomic.Bool
	once    sync.Once
}

func (c *watchedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil && !c.closing.Load() {
		c.once.Do(func() { c.closed <- "server" })
	}
	return n, err
}

func (c *watchedConn) Close() error {
	c.closing.Store(true)
	c.once.Do(func() { c.closed <- "client" })
	return c.Conn.Close()
}

// TestEngineHubFailureIsFaithful drops the connection of a Task state's
// request to the hub: the execution must fail with the engine's own error
// and undici's reason (err.cause), not be caught as the task's failure.
// The definition has the webhook machine's shape: a Catch on
// States.TaskFailed that parses the Cause as the stopped ECS task; before
// engine.mjs kept the cause and made the error uncatchable, "fetch failed"
// was caught there and the execution failed with a SyntaxError.
func TestEngineHubFailureIsFaithful(t *testing.T) {
	b := startBareEngine(t, func(string, json.RawMessage) (any, string) { return nil, dropConnection })
	d, tasks := b.run([]byte(`{"StartAt":"Verify","States":{
		"Verify":{"Type":"Task","Resource":"arn:aws:states:::ecs:runTask.sync","End":true,
			"Retry":[{"ErrorEquals":["States.ALL"],"MaxAttempts":2}],
			"Catch":[{"ErrorEquals":["States.TaskFailed"],"ResultPath":"$.failure","Next":"Stopped"}]},
		"Stopped":{"Type":"Pass","Parameters":{"task.$":"States.StringToJson($.failure.Cause)"},"End":true}}}`),
		map[string]string{})
	require.Equal(t, "FAILED", d.Status)
	require.Equal(t, "Emulate.HubError", d.Error, d.Cause)
	require.Contains(t, d.Cause, "hub /engine/task: fetch failed: ")
	require.Regexp(t, `UND_ERR_SOCKET|ECONNRESET`, d.Cause, "the cause says why the fetch failed")
	require.Equal(t, []string{"Verify"}, tasks, "not retried: the hub may have run the task")
}

// TestLateFirstRequest shows why the hub sets no ReadHeaderTimeout:
// net/http arms it as it accepts, so with it (here the old 10 s scaled to
// 200 ms) a client that connects and writes its first request late, as the
// engine does when its event loop stalls under load, finds the connection
// closed; newServer's server answers it.
func TestLateFirstRequest(t *testing.T) {
	s := &Stack{}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("{}")) })
	for name, tc := range map[string]struct {
		srv    *http.Server
		served bool
	}{
		"newServer":               {s.newServer(ok), true},
		"ReadHeaderTimeout 200ms": {&http.Server{Handler: ok, ReadHeaderTimeout: 200 * time.Millisecond}, false},
	} {
		t.Run(name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			go func() { _ = tc.srv.Serve(ln) }()
			defer tc.srv.Close()
			c, err := net.Dial("tcp", ln.Addr().String())
			require.NoError(t, err)
			defer c.Close()
			time.Sleep(400 * time.Millisecond) // the client's stall
			_, _ = c.Write([]byte("POST /engine/task HTTP/1.1\r\nHost: hub\r\nContent-Length: 2\r\n\r\n{}"))
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if !tc.served {
				require.Error(t, err, "the server closed the connection before the request")
				return
			}
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
		})
	}
}
