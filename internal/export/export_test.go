package export

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"benchling-webhook/internal/exitcode"
	"benchling-webhook/internal/store"
	"benchling-webhook/internal/testkit/samplezip"
)

func TestDestination(t *testing.T) {
	require.Equal(t, "out", Config{LocalDir: "out/"}.Destination())
	require.Equal(t, filepath.Join("out", "benchling", "etr_1"), Config{LocalDir: "out", PackageName: "benchling/etr_1"}.Destination())
	require.Equal(t, "s3://b/benchling/etr_1/", Config{Registry: "b", PackageName: "benchling/etr_1"}.Destination())
}

func TestContentType(t *testing.T) {
	ct := ContentType("benchling/etr_1")
	require.Equal(t, "text/markdown; charset=utf-8", ct("benchling/etr_1/README.md"))
	require.Empty(t, ct("benchling/etr_1/docs/README.md"))
	require.Empty(t, ct("benchling/etr_1/entry.json"))
	require.Equal(t, "text/markdown; charset=utf-8", ContentType("")("README.md"))
}

// TestRunReadme exports into a folder: entry.json read first, the files,
// README.md last; without entry.json nothing is downloaded or written.
func TestRunReadme(t *testing.T) {
	dir := t.TempDir()
	zipPath := filepath.Join(dir, "e.zip")
	m, err := samplezip.WriteFile(zipPath, samplezip.Small())
	require.NoError(t, err)
	out := filepath.Join(dir, "out")
	d, err := store.NewDir(out)
	require.NoError(t, err)
	defer d.Close()
	cfg := Config{Source: zipPath, Store: d, PackageName: "benchling/etr_0uKCQZ8f", LocalDir: out, Readme: true,
		Manifest: filepath.Join(dir, "manifest.json")}

	_, err = Run(t.Context(), cfg)
	require.ErrorContains(t, err, "entry.json: not found")
	require.Equal(t, exitcode.Usage, exitcode.Resolve(err))
	_, err = os.Stat(filepath.Join(out, "benchling"))
	require.ErrorIs(t, err, os.ErrNotExist, "nothing written")

	b, err := os.ReadFile(filepath.Join("..", "benchling", "testdata", "entry.json"))
	require.NoError(t, err)
	pkg := filepath.Join(out, "benchling", "etr_0uKCQZ8f")
	require.NoError(t, os.MkdirAll(pkg, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(pkg, "entry.json"), b, 0o644))
	res, err := Run(t.Context(), cfg)
	require.NoError(t, err)
	require.Len(t, res.Files, len(m.Entries))
	require.Equal(t, "benchling/etr_0uKCQZ8f/README.md", res.Readme)
	require.Positive(t, res.ArchiveSize)
	readme, err := os.ReadFile(filepath.Join(pkg, "README.md"))
	require.NoError(t, err)
	require.Contains(t, string(readme), "| Modified | 2025-03-30T23:37:22.777296+00:00 |")
	_, err = os.Stat(cfg.Manifest)
	require.NoError(t, err)
}
