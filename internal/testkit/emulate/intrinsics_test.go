package emulate

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"benchling-webhook/internal/testkit/testenv"

	"github.com/stretchr/testify/require"
)

// bareEngine is the engine with a small hub of the test's own: it answers
// Task states with answer and records which ones ran, per execution.
type bareEngine struct {
	t      *testing.T
	e      *engine
	mu     sync.Mutex
	tasks  map[string][]string
	done   map[string]chan engineDone
	answer func(state string, input json.RawMessage) (output any, errName string)
	seq    int
}

// dropConnection, as the error name an answer returns, makes the bare hub
// close the connection instead of answering.
const dropConnection = "test: drop the connection"

func startBareEngine(t *testing.T, answer func(state string, input json.RawMessage) (any, string)) *bareEngine {
	t.Helper()
	node, module, err := NodeTools("")
	testenv.Need(t, testenv.EnvRequireS3, err)
	b := &bareEngine{t: t, tasks: map[string][]string{}, done: map[string]chan engineDone{}, answer: answer}
	hub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/engine/done":
			var d engineDone
			if json.NewDecoder(r.Body).Decode(&d) == nil {
				b.mu.Lock()
				ch := b.done[d.ARN]
				b.mu.Unlock()
				if ch != nil {
					ch <- d
				}
			}
			_, _ = w.Write([]byte("{}"))
		case "/engine/task":
			var req struct {
				ExecutionArn, State string
				Input               json.RawMessage
			}
			_ = json.NewDecoder(r.Body).Decode(&req)
			b.mu.Lock()
			b.tasks[req.ExecutionArn] = append(b.tasks[req.ExecutionArn], req.State)
			b.mu.Unlock()
			out, errName := "stopped by the test", "Test.Stop"
			var output any
			if b.answer != nil {
				output, errName = b.answer(req.State, req.Input)
			}
			if errName == dropConnection {
				// As a hub that goes away mid-request: no answer, the
				// connection just closes.
				if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
					_ = c.Close()
				}
				return
			}
			if errName != "" {
				_ = json.NewEncoder(w).Encode(map[string]string{"error": errName, "cause": out})
				return
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"output": output})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(hub.Close)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	e, err := startEngine(ctx, engineOptions{dir: t.TempDir(), node: node, module: module, hubURL: hub.URL, idle: engineIdle})
	require.NoError(t, err)
	t.Cleanup(e.close)
	b.e = e
	return b
}

// run runs definition with input and returns how it ended and the Task
// states it ran, in order.
func (b *bareEngine) run(definition []byte, input any) (engineDone, []string) {
	b.t.Helper()
	b.mu.Lock()
	b.seq++
	arn := fmt.Sprintf("arn:aws:states:us-east-1:123456789012:execution:test:run%d", b.seq)
	ch := make(chan engineDone, 1)
	b.done[arn] = ch
	b.mu.Unlock()
	ctx, cancel := context.WithTimeout(b.t.Context(), time.Minute)
	defer cancel()
	require.NoError(b.t, b.e.post(ctx, "/start", map[string]any{"arn": arn, "definition": json.RawMessage(definition),
		"input": input, "waitMs": 1, "retryMs": 1,
		"context": map[string]any{"Execution": map[string]any{"Id": arn, "Name": fmt.Sprintf("run%d", b.seq), "StartTime": "2026-12-04T10:00:00Z"}}}))
	select {
	case d := <-ch:
		b.mu.Lock()
		defer b.mu.Unlock()
		return d, b.tasks[arn]
	case <-ctx.Done():
		b.t.Fatal("the execution did not end")
		return engineDone{}, nil
	}
}

// TestStringSplitAsAWS checks the engine's States.StringSplit against AWS's
// documentation: the delimiter argument is a set of characters, and no
// empty strings come back (engine.mjs replaces the library's version,
// which split on the whole argument: the first four cases fail with it).
func TestStringSplitAsAWS(t *testing.T) {
	b := startBareEngine(t, nil)
	d, _ := b.run([]byte(`{"StartAt":"S","States":{"S":{"Type":"Pass","End":true,"Parameters":{
		"doc.$": "States.StringSplit($.doc, $.splitter)",
		"runs.$": "States.StringSplit(',,a,,b,', ',')",
		"none.$": "States.StringSplit('abcabc', 'cba')",
		"empty.$": "States.StringSplit('', ',')",
		"subnets.$": "States.StringSplit('subnet-0a,subnet-0b', ',')",
		"unicode.$": "States.StringSplit($.unicode, 'ab')"}}}}`),
		map[string]string{"doc": "This.is+a,test=string", "splitter": ".+,=", "unicode": "aébça"})
	require.Equal(t, "SUCCEEDED", d.Status, "%s: %s", d.Error, d.Cause)
	var got map[string][]string
	require.NoError(t, json.Unmarshal(d.Output, &got))
	require.Equal(t, map[string][]string{
		"doc":     {"This", "is", "a", "test", "string"}, // AWS's own example
		"runs":    {"a", "b"},
		"none":    {},
		"empty":   {},
		"subnets": {"subnet-0a", "subnet-0b"},
		"unicode": {"é", "ç"},
	}, got)
}
