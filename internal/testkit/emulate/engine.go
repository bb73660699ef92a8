package emulate

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"benchling-webhook/internal/testkit/testenv"
)

//go:embed engine.mjs
var engineScript []byte

// NodeTools locates Node 22 and aws-local-stepfunctions in the
// repository's tools/node ([testenv.NodeTools]), which `make tools`
// installs; the error wraps [testenv.ErrNoNode] when they are missing.
func NodeTools(repoRoot string) (node, module string, err error) {
	n, err := testenv.NodeTools(repoRoot)
	if err != nil {
		return "", "", fmt.Errorf("emulate: %w", err)
	}
	if module, err = n.Module("aws-local-stepfunctions/build/main.node.esm.js"); err != nil {
		return "", "", fmt.Errorf("emulate: %w", err)
	}
	return n.Bin, module, nil
}

// idleTimeouts is how long the two ends of a keep-alive connection keep it
// idle. The client must always give it up first: a server that closes an
// idle connection can do so just as the client sends the next request on
// it, and the client then gets "connection reset by peer" (Go's client does
// not retry a POST). With client < server by a wide margin, the server only
// ever sees clean closes. See docs/architecture.md, "Local stack: connection
// lifetimes".
type idleTimeouts struct{ client, server time.Duration }

// engineIdle is the hub's client to the engine's Node HTTP server. Node's
// default keepAliveTimeout (5 s) is shorter than Go's default
// IdleConnTimeout (90 s), the wrong way round, so both are set here: the
// server's is passed to engine.mjs as ENGINE_KEEPALIVE_MS.
var engineIdle = idleTimeouts{client: 5 * time.Second, server: 60 * time.Second}

// engine is the Node process running aws-local-stepfunctions.
type engine struct {
	url    string
	client *http.Client
	cmd    *exec.Cmd
	done   chan struct{}
	log    *bytes.Buffer
}

// engineOptions configures [startEngine].
type engineOptions struct {
	dir, node, module, hubURL string
	stderr                    io.Writer
	idle                      idleTimeouts
	// dial replaces the client's dialer (tests watch the connections).
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// startEngine starts the engine script with node and waits for its port.
func startEngine(ctx context.Context, o engineOptions) (*engine, error) {
	script := filepath.Join(o.dir, "engine.mjs")
	if err := os.WriteFile(script, engineScript, 0o644); err != nil {
		return nil, fmt.Errorf("emulate: write engine script: %w", err)
	}
	if o.dial == nil {
		o.dial = (&net.Dialer{Timeout: 10 * time.Second}).DialContext
	}
	cmd := exec.Command(o.node, script)
	cmd.Env = append(os.Environ(), "HUB_URL="+o.hubURL, "SFN_MODULE="+o.module, "NODE_OPTIONS=",
		"ENGINE_KEEPALIVE_MS="+strconv.FormatInt(o.idle.server.Milliseconds(), 10))
	cmd.SysProcAttr = testenv.ChildProcAttr() // no engine outlives a killed test binary
	e := &engine{
		// No proxy: the engine is on 127.0.0.1.
		client: &http.Client{Transport: &http.Transport{DialContext: o.dial, IdleConnTimeout: o.idle.client}},
		cmd:    cmd, done: make(chan struct{}), log: new(bytes.Buffer),
	}
	cmd.Stderr = io.MultiWriter(e.log, stderrOrDiscard(o.stderr))
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("emulate: start engine: %w", err)
	}
	go func() { _ = cmd.Wait(); close(e.done) }()
	first := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			first <- sc.Text()
		}
		close(first)
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case line, ok := <-first:
		var hello struct{ Port int }
		if !ok || json.Unmarshal([]byte(line), &hello) != nil || hello.Port == 0 {
			e.close()
			return nil, fmt.Errorf("emulate: engine did not start: %q %s", line, e.log.String())
		}
		e.url = fmt.Sprintf("http://127.0.0.1:%d", hello.Port)
		return e, nil
	case <-time.After(30 * time.Second):
	case <-ctx.Done():
	}
	e.close()
	return nil, fmt.Errorf("emulate: engine did not report its port in time: %s", e.log.String())
}

// post sends one request to the engine.
func (e *engine) post(ctx context.Context, path string, body any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.client.Do(req)
	if err != nil {
		return fmt.Errorf("emulate: engine %s: %w", path, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 300 {
		return fmt.Errorf("emulate: engine %s: HTTP %d: %s", path, resp.StatusCode, msg)
	}
	return nil
}

func (e *engine) close() {
	e.client.CloseIdleConnections()
	if e.cmd.Process != nil {
		_ = e.cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-e.done:
	case <-time.After(5 * time.Second):
		_ = e.cmd.Process.Kill()
		<-e.done
	}
}

func stderrOrDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}
