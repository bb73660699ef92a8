package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"benchling-webhook/internal/testkit/samplezip"

	"github.com/stretchr/testify/require"
)

// TestExportPackageName: --package-name is a Quilt package name,
// <prefix>/<entry id>, checked before anything is read or written. A bad
// entry id is bad input (exit 3), a bad prefix or shape configuration
// (exit 2); the message names what was wrong.
func TestExportPackageName(t *testing.T) {
	zipPath, _ := sample(t, samplezip.Small())
	long := "etr_" + strings.Repeat("x", 996)
	tests := map[string]struct {
		name string
		code int
		want string
	}{
		"question mark":         {"benchling/etr_a?b", 3, `"etr_a?b"`},
		"hash":                  {"benchling/etr_a#b", 3, `"etr_a#b"`},
		"percent":               {"benchling/etr_a%2Fb", 3, `"etr_a%2Fb"`},
		"not an entry":          {"benchling/p", 3, `"p"`},
		"etr_ alone":            {"benchling/etr_", 3, `"etr_"`},
		"unicode":               {"benchling/etr_été", 3, `"etr_été"`},
		"1,000 characters":      {"benchling/" + long, 3, long},
		"dot dot":               {"benchling/..", 3, `".."`},
		"path-like":             {"benchling/etr_x/../etr_victim", 2, "is not two parts"},
		"escaping the prefix":   {"../etr_1", 2, `the prefix ".."`},
		"three parts":           {"lab/benchling/etr_1", 2, `"lab/benchling/etr_1" is not two parts`},
		"one part":              {"etr_1", 2, "not two parts"},
		"question mark, prefix": {"bench?ling/etr_1", 2, `the prefix "bench?ling"`},
		"hash, prefix":          {"bench#ling/etr_1", 2, `the prefix "bench#ling"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			// With --registry: refused before any S3 call (there is no S3 here).
			r := runJob(t, nil, "export", "--download-url", zipPath, "--registry", "b", "--package-name", tc.name)
			require.Equal(t, tc.code, r.code, r.stderr)
			require.Contains(t, r.result.Body.Error, tc.want)
			// With --local-dir: the same, and nothing is written.
			out := t.TempDir()
			r = runJob(t, nil, "export", "--download-url", zipPath, "--local-dir", out, "--package-name", tc.name)
			require.Equal(t, tc.code, r.code, r.stderr)
			require.Contains(t, r.result.Body.Error, tc.want)
			ents, err := os.ReadDir(out)
			require.NoError(t, err)
			require.Empty(t, ents)
		})
	}
	// A --local-dir export may go without a package name (the folder's
	// root), as the README's first example does; a valid name is used as is.
	out := t.TempDir()
	r := runJob(t, nil, "export", "--download-url", zipPath, "--local-dir", out)
	require.Equal(t, 0, r.code, r.stderr)
	out = t.TempDir()
	r = runJob(t, nil, "export", "--download-url", zipPath, "--local-dir", out, "--package-name", "my-lab_2/etr_0uKCQZ8f/")
	require.Equal(t, 0, r.code, r.stderr)
	_, err := os.Stat(filepath.Join(out, "my-lab_2", "etr_0uKCQZ8f"))
	require.NoError(t, err)
}
