package deploycheck

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// fakeAWS is an `aws` for configure.sh's real (not --dry-run) path: every
// call is logged to $FAKE_AWS_LOG; `s3 cp <url> -` prints $FAKE_CONFIG, or
// fails as the CLI does for a missing key when it is unset; SSM reads find
// nothing stored.
const fakeAWS = `#!/usr/bin/env bash
printf '%s\n' "$*" >>"$FAKE_AWS_LOG"
args=" $* "
case "$args" in
*" sts get-caller-identity "*) echo 123456789012 ;;
*" s3 cp "*)
	if [[ -n "${FAKE_CONFIG:-}" ]]; then cat "$FAKE_CONFIG"; else
		echo 'fatal error: An error occurred (404) when calling the HeadObject operation: Key ".quilt/workflows/config.yml" does not exist' >&2
		exit 1
	fi ;;
*" ssm get-parameter "*) echo 'An error occurred (ParameterNotFound) when calling the GetParameter operation:' >&2; exit 254 ;;
*" ssm get-parameters "*) echo "" ;;
*" secretsmanager describe-secret "*) echo secret ;;
esac
`

// TestConfigureQuiltWorkflow: configure.sh reads the bucket's
// .quilt/workflows/config.yml (aws s3 cp … -) before it writes anything,
// and fails (exit 1, nothing stored) when the bucket requires a workflow
// and none is configured, or the configured one is not in the config.
func TestConfigureQuiltWorkflow(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	script := filepath.Join(repoRoot(t), "scripts", "configure.sh")
	bin := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(bin, "aws"), []byte(fakeAWS), 0o755))
	config, err := os.ReadFile(filepath.Join(repoRoot(t), "internal", "workflow", "testdata", "config.yml"))
	require.NoError(t, err)

	tests := map[string]struct {
		config   string // "" = the bucket has none
		workflow string // --quilt-workflow
		fails    string // "" = accepted
	}{
		"no config, none":           {"", "none", ""},
		"no config, a workflow":     {"", "benchling", "does not exist: Quilt refuses a package that names a workflow"},
		"required, none":            {string(config), "none", "requires a workflow (is_workflow_required is true unless set false) and none is configured: Quilt would refuse every package. Pass --quilt-workflow with one of: benchling, anything"},
		"known workflow":            {string(config), "benchling", ""},
		"other known workflow":      {string(config), "anything", ""},
		"unknown workflow":          {string(config), "alpha", "--quilt-workflow alpha is not a workflow of s3://quilt-local/.quilt/workflows/config.yml (it has: benchling, anything)"},
		"not required, none":        {string(config) + "is_workflow_required: false # optional\n", "none", ""},
		"default workflow, none":    {string(config) + "default_workflow: 'benchling'\n", "none", ""},
		"undefined default":         {string(config) + "default_workflow: gone\n", "none", "names default_workflow gone, which it does not define"},
		"flow style is not guessed": {"version: '1'\nworkflows: {a: {name: A}}\n", "alpha", ""},
		"quoted names, comments":    {"# c\nversion: \"1\"\nworkflows:\n    # the lab's\n    \"lab-1\":   # a comment\n        name: Lab\n        metadata_schema: s\n    'x_2':\n        name: X\n", "x_2", ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			log := filepath.Join(dir, "aws.log")
			env := append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "FAKE_AWS_LOG="+log, "AWS_REGION=us-east-1")
			if tc.config != "" {
				cfg := filepath.Join(dir, "config.yml")
				require.NoError(t, os.WriteFile(cfg, []byte(tc.config), 0o644))
				env = append(env, "FAKE_CONFIG="+cfg)
			}
			cmd := exec.Command("bash", script, "dev", "--bucket", "quilt-local", "--quilt-workflow", tc.workflow, "--no-secret")
			cmd.Env = env
			out, err := cmd.CombinedOutput()
			calls, rerr := os.ReadFile(log)
			require.NoError(t, rerr)
			require.Contains(t, string(calls), "s3 cp s3://quilt-local/.quilt/workflows/config.yml -", "configure.sh read the config")
			if tc.fails == "" {
				require.NoError(t, err, "%s", out)
				require.Contains(t, string(calls), "ssm put-parameter --name /benchling-webhook/dev/quilt-workflow --type String --overwrite")
				return
			}
			var ee *exec.ExitError
			require.True(t, errors.As(err, &ee), "configure.sh accepted it: %s", out)
			require.Equal(t, 1, ee.ExitCode(), "%s", out)
			require.Contains(t, strings.Join(strings.Fields(string(out)), " "), tc.fails)
			require.NotContains(t, string(calls), "put-parameter", "nothing is stored when the workflow check fails")
		})
	}
}
