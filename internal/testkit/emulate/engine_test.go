package emulate

import (
	"context"
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
	// Node's fetch (4 s).
	s := &Stack{}
	for name, srv := range map[string]*http.Server{"hub": s.newServer(nil), "gateway": s.newServer(nil)} {
		require.Zero(t, srv.IdleTimeout, name)
		require.Zero(t, srv.ReadTimeout, name)
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
