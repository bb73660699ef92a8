package cfncheck

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"benchling-webhook/internal/testkit/testenv"
)

// TestRepositoryTemplates validates every CloudFormation template the
// deployment uses (addons/, which Copilot reads through the
// copilot/worker/addons link) against the resource specification, and
// checks that the local files they name (the state machine definitions
// Copilot uploads) exist.
func TestRepositoryTemplates(t *testing.T) {
	s := testSpec(t)
	root, err := testenv.RepoRoot()
	require.NoError(t, err)
	paths, err := filepath.Glob(filepath.Join(root, "copilot", "*", "addons", "*.yml"))
	require.NoError(t, err)
	n := 0
	for _, p := range paths {
		if filepath.Base(p) == "addons.parameters.yml" {
			continue
		}
		n++
		t.Run(filepath.Base(p), func(t *testing.T) {
			tmpl, err := Load(p)
			require.NoError(t, err)
			for _, prob := range s.Check(tmpl) {
				t.Errorf("%s: %s", p, prob)
			}
			require.NotEmpty(t, tmpl.LocalFiles, "the state machines' definitions are local files")
			base, ok := CopilotBase(p)
			require.True(t, ok, "%s is not below a copilot/ folder", p)
			for _, f := range tmpl.LocalFiles {
				_, err := os.Stat(filepath.Join(base, f.File))
				require.NoError(t, err, "%s line %d names %s", p, f.Line, f.Path)
			}
		})
	}
	require.NotZero(t, n, "no templates under copilot/*/addons")
}
