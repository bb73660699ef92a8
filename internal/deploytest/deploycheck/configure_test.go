package deploycheck

import (
	"errors"
	"os/exec"
	"path/filepath"
	"testing"

	"benchling-webhook/internal/quiltpkg"

	"github.com/stretchr/testify/require"
)

// TestConfigurePrefix: scripts/configure.sh takes as --prefix exactly what
// quiltpkg.CheckPackagePrefix takes, one part of a Quilt package name.
func TestConfigurePrefix(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	script := filepath.Join(repoRoot(t), "scripts", "configure.sh")
	for _, p := range []string{"benchling", "my-lab_2", "X", "a.b", "lab/benchling", "a?b", "a#b", "..", ".", "a b", "é", "lab_1-x"} {
		cmd := exec.Command("bash", script, "dev", "--prefix", p, "--dry-run")
		out, err := cmd.CombinedOutput()
		want := quiltpkg.CheckPackagePrefix(p) == nil
		if want {
			require.NoError(t, err, "%q: %s", p, out)
			continue
		}
		var ee *exec.ExitError
		require.True(t, errors.As(err, &ee), "%q: configure.sh accepted it: %s", p, out)
		require.Equal(t, 2, ee.ExitCode(), "%q: %s", p, out)
		require.Contains(t, string(out), "--prefix", p)
	}
}
