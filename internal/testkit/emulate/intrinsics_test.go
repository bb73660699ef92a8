package emulate

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"benchling-webhook/internal/testkit/testenv"

	"github.com/stretchr/testify/require"
)

// runDefinition runs definition on the engine alone (a hub that only hears
// how the run ended) and returns the execution's output.
func runDefinition(t *testing.T, definition string, input any) json.RawMessage {
	t.Helper()
	node, module, err := NodeTools("")
	testenv.Need(t, testenv.EnvRequireS3, err)
	done := make(chan engineDone, 1)
	hub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/engine/done" {
			var d engineDone
			if json.NewDecoder(r.Body).Decode(&d) == nil {
				done <- d
			}
		}
		_, _ = w.Write([]byte("{}"))
	}))
	defer hub.Close()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	e, err := startEngine(ctx, engineOptions{dir: t.TempDir(), node: node, module: module, hubURL: hub.URL, idle: engineIdle})
	require.NoError(t, err)
	defer e.close()
	require.NoError(t, e.post(ctx, "/start", map[string]any{"arn": "arn:test", "definition": json.RawMessage(definition),
		"input": input, "context": map[string]any{}}))
	select {
	case d := <-done:
		require.Equal(t, "SUCCEEDED", d.Status, "%s: %s", d.Error, d.Cause)
		return d.Output
	case <-ctx.Done():
		t.Fatal("the execution did not end")
		return nil
	}
}

// TestStringSplitAsAWS checks the engine's States.StringSplit against AWS's
// documentation: the delimiter argument is a set of characters, and no
// empty strings come back (engine.mjs replaces the library's version,
// which split on the whole argument: the first three cases fail with it).
func TestStringSplitAsAWS(t *testing.T) {
	out := runDefinition(t, `{"StartAt":"S","States":{"S":{"Type":"Pass","End":true,"Parameters":{
		"doc.$": "States.StringSplit($.doc, $.splitter)",
		"runs.$": "States.StringSplit(',,a,,b,', ',')",
		"none.$": "States.StringSplit('abcabc', 'cba')",
		"empty.$": "States.StringSplit('', ',')",
		"subnets.$": "States.StringSplit('subnet-0a,subnet-0b', ',')",
		"unicode.$": "States.StringSplit($.unicode, 'ab')"}}}}`,
		map[string]string{"doc": "This.is+a,test=string", "splitter": ".+,=", "unicode": "aébça"})
	var got map[string][]string
	require.NoError(t, json.Unmarshal(out, &got))
	require.Equal(t, map[string][]string{
		"doc":     {"This", "is", "a", "test", "string"}, // AWS's own example
		"runs":    {"a", "b"},
		"none":    {},
		"empty":   {},
		"subnets": {"subnet-0a", "subnet-0b"},
		"unicode": {"é", "ç"},
	}, got)
}
