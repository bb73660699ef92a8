package deploycheck

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"benchling-webhook/internal/webhook"
)

func configureScript(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	return filepath.Join(repoRoot(t), "scripts", "configure.sh")
}

// scriptConstant returns the value of `readonly NAME='…'` or `readonly
// NAME="…"` in the script.
func scriptConstant(t *testing.T, script, name string) string {
	t.Helper()
	b, err := os.ReadFile(script)
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^readonly ` + name + `=['"]([^'"]*)['"]$`).FindSubmatch(b)
	require.NotNil(t, m, "configure.sh has no readonly %s", name)
	return string(m[1])
}

// TestConfigureJWKSURL: scripts/configure.sh writes job verify's default
// JWKS URL (one home: webhook.DefaultJWKSURL) when none is given, takes a
// legacy one, and refuses what is not an https URL.
func TestConfigureJWKSURL(t *testing.T) {
	script := configureScript(t)
	require.Equal(t, webhook.DefaultJWKSURL, scriptConstant(t, script, "DEFAULT_JWKS_URL"),
		"configure.sh's default JWKS URL vs. job verify's")
	run := func(args ...string) (string, error) {
		out, err := exec.Command("bash", append([]string{script, "dev", "--dry-run", "--no-secret"}, args...)...).CombinedOutput()
		return string(out), err
	}
	put := "aws ssm put-parameter --name /benchling-webhook/dev/jwks-url --type String --overwrite"

	out, err := run()
	require.NoError(t, err, out)
	require.Contains(t, out, "if /benchling-webhook/dev/jwks-url does not exist yet")
	require.Contains(t, out, put)
	require.Contains(t, out, "--value '"+webhook.DefaultJWKSURL+"'")

	legacy := "https://benchling.com/apps/jwks/app_qdSsffBWrLoTVId4"
	out, err = run("--jwks-url", legacy)
	require.NoError(t, err, out)
	require.Contains(t, out, put)
	require.Contains(t, out, "--value "+legacy+"\n")
	require.NotContains(t, out, "does not exist yet")

	for _, bad := range []string{"http://example.com/jwks", "apps.benchling.com/jwks", "https://x.com/a b", `https://x.com/"`, "https://"} {
		out, err := run("--jwks-url", bad)
		var ee *exec.ExitError
		require.True(t, errors.As(err, &ee), "%q: configure.sh accepted it: %s", bad, out)
		require.Equal(t, 2, ee.ExitCode(), "%q: %s", bad, out)
		require.Contains(t, out, "--jwks-url", bad)
	}
}

// TestConfigureWritesEverySetting: the SSM parameters the addon reads
// (addons.parameters.yml, /${AppName}/${EnvName}/<name>) are exactly those
// configure.sh writes and checks for (its PARAMETERS), so no setting is
// left for the user to create by hand.
func TestConfigureWritesEverySetting(t *testing.T) {
	script := configureScript(t)
	written := strings.Fields(scriptConstant(t, script, "PARAMETERS"))
	sort.Strings(written)
	var read []string
	for _, v := range readParameters(t, filepath.Join(repoRoot(t), "addons")) {
		if s, ok := asMap(v)["Fn::Sub"].(string); ok && strings.HasPrefix(s, "/${AppName}/${EnvName}/") {
			read = append(read, strings.TrimPrefix(s, "/${AppName}/${EnvName}/"))
		}
	}
	sort.Strings(read)
	require.Contains(t, read, "jwks-url")
	require.Equal(t, read, written, "addons.parameters.yml's SSM names vs. configure.sh's PARAMETERS")
	b, err := os.ReadFile(script)
	require.NoError(t, err)
	for _, name := range written {
		require.True(t, slices.ContainsFunc(strings.Split(string(b), "\n"), func(l string) bool {
			return strings.HasPrefix(l, "put_parameter "+name+" ") || strings.HasPrefix(l, "\tput_parameter "+name+" ")
		}), "configure.sh never writes %s", name)
	}
}
