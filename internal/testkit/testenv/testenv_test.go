package testenv

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRepoRoot(t *testing.T) {
	root := t.TempDir()
	write := func(rel, content string) {
		p := filepath.Join(root, rel)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	}
	write("repo/go.mod", "module benchling-webhook\n\ngo 1.26.0\n")
	write("repo/tools/go.mod", "// Module tools pins test programs.\nmodule benchling-webhook/tools\n")
	write("repo/internal/x/keep", "")
	write("other/go.mod", "module example.com/other\n")
	write("other/sub/keep", "")

	tests := map[string]struct {
		start   string
		want    string // "" means an error matching ErrMissing
		wantErr string
	}{
		"root itself":        {start: "repo", want: "repo"},
		"nested package":     {start: "repo/internal/x", want: "repo"},
		"tools module skips": {start: "repo/tools", want: "repo"},
		"other module":       {start: "other/sub", wantErr: "no go.mod"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := repoRoot(filepath.Join(root, tc.start))
			if tc.want == "" {
				require.ErrorIs(t, err, ErrMissing)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, filepath.Join(root, tc.want), got)
		})
	}

	t.Run("this repository", func(t *testing.T) {
		got, err := RepoRoot()
		require.NoError(t, err)
		_, file, _, _ := runtime.Caller(0)
		assert.Equal(t, filepath.Dir(filepath.Dir(filepath.Dir(filepath.Dir(file)))), got)
	})
}

func TestRequired(t *testing.T) {
	tests := map[string]struct {
		ci, optIn string
		want      bool
	}{
		"neither":   {},
		"CI=true":   {ci: "true", want: true},
		"CI=1":      {ci: "1"},
		"opt-in=1":  {optIn: "1", want: true},
		"opt-in=0":  {optIn: "0"},
		"both":      {ci: "true", optIn: "1", want: true},
		"CI=false":  {ci: "false"},
		"opt-in=on": {optIn: "on"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Setenv("CI", tc.ci)
			t.Setenv(EnvRequireS3, tc.optIn)
			assert.Equal(t, tc.want, Required(EnvRequireS3))
		})
	}
}

// recorder is a testing.TB that records Skip and Fatal instead of
// stopping the goroutine.
type recorder struct {
	testing.TB
	skipped, failed bool
}

func (r *recorder) Helper()                         {}
func (r *recorder) Skipf(string, ...any)            { r.skipped = true }
func (r *recorder) Fatalf(string, ...any)           { r.failed = true }
func (r *recorder) Fatal(...any)                    { r.failed = true }
func (r *recorder) outcome() (skipped, failed bool) { return r.skipped, r.failed }

func TestNeed(t *testing.T) {
	missingTool := errors.Join(errors.New("find tool"), MissingError("tool not found (run `make tools`)"))
	broken := errors.New("tool failed to start")
	tests := map[string]struct {
		err      error
		required bool
		skip     bool
		fail     bool
	}{
		"no error":              {},
		"missing":               {err: missingTool, skip: true},
		"missing, required":     {err: missingTool, required: true, fail: true},
		"missing node":          {err: ErrNoNode, skip: true},
		"other error":           {err: broken, fail: true},
		"other error, required": {err: broken, required: true, fail: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Setenv("CI", "")
			t.Setenv(EnvRequireImage, "")
			if tc.required {
				t.Setenv(EnvRequireImage, "1")
			}
			r := &recorder{TB: t}
			Need(r, EnvRequireImage, tc.err)
			skipped, failed := r.outcome()
			assert.Equal(t, tc.skip, skipped, "skipped")
			assert.Equal(t, tc.fail, failed, "failed")
		})
	}
}

func TestExecutable(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "tool")
	require.NoError(t, os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755))
	plain := filepath.Join(dir, "plain")
	require.NoError(t, os.WriteFile(plain, nil, 0o644))

	got, err := Executable(exe)
	require.NoError(t, err)
	assert.Equal(t, exe, got)
	for _, p := range []string{plain, filepath.Join(dir, "none"), dir} {
		_, err := Executable(p)
		require.ErrorIs(t, err, ErrMissing, p)
		assert.Contains(t, err.Error(), "make tools")
	}
	_, err = Executable(filepath.Join(dir, "job"))
	assert.Contains(t, err.Error(), "make build")
}

func TestNodeTools(t *testing.T) {
	root := t.TempDir()
	_, err := NodeTools(root)
	require.ErrorIs(t, err, ErrNoNode)
	require.ErrorIs(t, err, ErrMissing)

	bin := filepath.Join(root, "tools", "node", "node_modules", ".bin", "node")
	require.NoError(t, os.MkdirAll(filepath.Dir(bin), 0o755))
	require.NoError(t, os.WriteFile(bin, nil, 0o755))
	n, err := NodeTools(root)
	require.NoError(t, err)
	assert.Equal(t, bin, n.Bin)
	_, err = n.Module("velocityjs/dist/esm/index.mjs")
	require.ErrorIs(t, err, ErrNoNode)
	got, err := n.Module(".bin/node")
	require.NoError(t, err)
	assert.Equal(t, bin, got)
}
