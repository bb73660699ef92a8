package deploycheck

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"benchling-webhook/internal/deploytest/cfncheck"
	"benchling-webhook/internal/testkit/testenv"
)

// copilotRender is what bin/copilotrender prints: the stacks AWS Copilot's
// own packages (v1.34.1, built by `make tools` from
// testdata/copilotrender) render from the workspace, as `copilot job
// package` and `copilot env package` would, offline.
type copilotRender struct {
	Job         map[string]string `json:"job"`         // environment → the worker's stack template
	Env         map[string]string `json:"env"`         // environment → the environment's stack template
	EnvParams   map[string]string `json:"envParams"`   // environment → its stack parameters (JSON)
	Addon       string            `json:"addon"`       // the addon template as Copilot merges it
	AddonParams string            `json:"addonParams"` // addons.parameters.yml as Copilot passes it
}

// renderWithCopilot runs bin/copilotrender in the workspace at root for
// every environment there.
func renderWithCopilot(t testing.TB, root string) copilotRender {
	t.Helper()
	bin, err := testenv.Bin("copilotrender")
	testenv.Need(t, testenv.EnvRequireS3, err)
	ws := readWorkspace(t, root)
	cmd := exec.Command(bin, append([]string{ws.app, jobName}, ws.environments...)...)
	cmd.Dir = root
	// Offline: no credentials, no configuration, no instance metadata.
	cmd.Env = append(os.Environ(), "AWS_REGION=us-east-1", "AWS_CONFIG_FILE=/nonexistent",
		"AWS_SHARED_CREDENTIALS_FILE=/nonexistent", "AWS_EC2_METADATA_DISABLED=true")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "copilotrender: %s", stderr.String())
	var r copilotRender
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &r))
	require.Len(t, r.Job, len(ws.environments))
	return r
}

// copyWorkspace copies what Copilot reads (copilot/, with the addons link
// resolved) into a new directory, for a test to break.
func copyWorkspace(t testing.TB) string {
	t.Helper()
	src, dst := filepath.Join(repoRoot(t), "copilot"), t.TempDir()
	err := filepath.Walk(src, func(path string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		r, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, "copilot", r)
		if fi.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			// The addons link: copy the directory it points to (Walk does
			// not follow links).
			real, err := filepath.EvalSymlinks(path)
			if err != nil {
				return err
			}
			require.NoError(t, os.MkdirAll(target, 0o755))
			for _, f := range yamlFiles(t, real) {
				data, err := os.ReadFile(f)
				require.NoError(t, err)
				require.NoError(t, os.WriteFile(filepath.Join(target, filepath.Base(f)), data, 0o644))
			}
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	require.NoError(t, err)
	return dst
}

// editFile replaces old (which must occur) with new in a file.
func editFile(t testing.TB, path, old, new string) {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Contains(t, string(data), old, path)
	require.NoError(t, os.WriteFile(path, []byte(strings.Replace(string(data), old, new, 1)), 0o644))
}

// mustParse parses a rendered template.
func mustParse(t testing.TB, what, tpl string) *cfncheck.Template {
	t.Helper()
	parsed, err := cfncheck.Parse([]byte(tpl))
	require.NoError(t, err, what)
	return parsed
}

// ---------------------------------------------------------------- secret names

// partialARNSuffix is the end of a name that Secrets Manager reads as a
// secret ARN's random suffix: a hyphen and six characters. "Do not end your
// secret name with a hyphen followed by six characters. If you do so, you
// risk confusion and unexpected results when searching for a secret by
// partial ARN" (AWS Secrets Manager API Reference, CreateSecret, Name;
// https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_CreateSecret.html).
// Copilot turns a manifest's `secretsmanager: NAME` into exactly such a
// partial ARN (copilot-cli internal/pkg/template/workload.go,
// secretsManagerName.ValueFrom), so ECS finds no secret and stops every
// task at start.
var partialARNSuffix = regexp.MustCompile(`-[^-]{6}$`)

// secretNameError reports a Secrets Manager name that can be mistaken for
// a complete ARN.
func secretNameError(where, name string) error {
	if partialARNSuffix.MatchString(name) {
		return fmt.Errorf("%s: secret name %q ends in a hyphen and six characters, which Secrets Manager reads as an ARN's random suffix: no such secret is found", where, name)
	}
	return nil
}

// subAppEnv fills in the application and environment of a rendered value.
func subAppEnv(s, app, env string) string {
	return strings.NewReplacer("${AppName}", app, "${EnvName}", env, "${App}", app, "${Env}", env).Replace(s)
}

// secretARNName returns the name part of a Secrets Manager ARN (everything
// after ":secret:").
func secretARNName(arn string) (string, bool) {
	if !strings.Contains(arn, ":secretsmanager:") {
		return "", false
	}
	_, name, ok := strings.Cut(arn, ":secret:")
	return name, ok
}

// secretNames is where a deployment names its secrets.
type secretNames struct {
	manifest  map[string][]string // environment → names in the worker's rendered task definition
	addon     map[string]string   // environment → the addon parameter ClientSecretName
	configure map[string][]string // environment → names configure.sh creates or updates
	templates []string            // literal {{resolve:secretsmanager:NAME}} in the addon templates
}

// collectSecretNames reads the secret names out of Copilot's rendering, the
// addon templates and configure.sh's dry run (nil: not run).
func collectSecretNames(t testing.TB, r copilotRender, app string, configure map[string]string) secretNames {
	t.Helper()
	out := secretNames{manifest: map[string][]string{}, addon: map[string]string{}, configure: map[string][]string{}}
	params := addonParams(t, r)
	for env, tpl := range r.Job {
		job := mustParse(t, "job stack "+env, tpl)
		for _, res := range job.Resources {
			if res.Type != "AWS::ECS::TaskDefinition" {
				continue
			}
			for _, c := range asList(res.Properties["ContainerDefinitions"]) {
				for _, s := range asList(asMap(c)["Secrets"]) {
					for _, v := range render(asMap(s)["ValueFrom"]) {
						if name, ok := secretARNName(v); ok {
							out.manifest[env] = append(out.manifest[env], subAppEnv(name, app, env))
						}
					}
				}
			}
		}
		if v := render(params["ClientSecretName"]); len(v) == 1 {
			out.addon[env] = subAppEnv(v[0], app, env)
		}
	}
	for env, dry := range configure {
		out.configure[env] = configureSecretNames(dry)
	}
	resolve := regexp.MustCompile(`\{\{resolve:secretsmanager:([^:}]+)`)
	for _, p := range addonTemplatePaths(t) {
		data, err := os.ReadFile(p)
		require.NoError(t, err)
		for _, m := range resolve.FindAllStringSubmatch(string(data), -1) {
			if !strings.Contains(m[1], "${") {
				out.templates = append(out.templates, m[1])
			}
		}
	}
	return out
}

// addonParams returns the addon parameters Copilot passes, intrinsic
// functions in their long form.
func addonParams(t testing.TB, r copilotRender) map[string]any {
	t.Helper()
	return asMap(mustParse(t, "addon parameters", "Params:\n"+indent(r.AddonParams)).Raw["Params"])
}

// indent indents every line of s by two spaces.
func indent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = "  " + l
	}
	return strings.Join(lines, "\n") + "\n"
}

// configureSecretNames returns the secrets named by the secretsmanager
// commands of a configure.sh --dry-run.
func configureSecretNames(dryRun string) []string {
	var names []string
	arg := regexp.MustCompile(`--(?:name|secret-id) '?([^' ]+)'?`)
	for _, line := range strings.Split(dryRun, "\n") {
		if !strings.Contains(line, " secretsmanager ") {
			continue
		}
		for _, m := range arg.FindAllStringSubmatch(line, -1) {
			names = append(names, m[1])
		}
	}
	return names
}

// configureDryRun returns scripts/configure.sh <env> --dry-run's output.
func configureDryRun(t testing.TB, env string) string {
	t.Helper()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	cmd := exec.Command("bash", filepath.Join(repoRoot(t), "scripts", "configure.sh"), env, "--dry-run")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	return string(out)
}

// checkSecretNames fails on any secret name that ends in a hyphen and six
// characters, and on an environment whose manifest, addon parameter and
// configure.sh name different secrets (the task, the connection and the
// script must agree on one).
func checkSecretNames(n secretNames) []error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	for _, env := range sortedKeys(n.manifest) {
		for _, name := range n.manifest[env] {
			add(secretNameError("copilot/"+jobName+"/manifest.yml secrets (rendered by Copilot for "+env+")", name))
		}
	}
	for _, env := range sortedKeys(n.addon) {
		add(secretNameError("addons/addons.parameters.yml ClientSecretName ("+env+")", n.addon[env]))
		if len(n.manifest[env]) > 0 && !slices.Contains(n.manifest[env], n.addon[env]) {
			add(fmt.Errorf("%s: the manifest's secrets %v and the addon's ClientSecretName %q differ", env, n.manifest[env], n.addon[env]))
		}
	}
	for _, env := range sortedKeys(n.configure) {
		names := n.configure[env]
		if len(names) == 0 {
			add(fmt.Errorf("scripts/configure.sh %s --dry-run names no secret", env))
		}
		for _, name := range names {
			add(secretNameError("scripts/configure.sh ("+env+")", name))
			if a, ok := n.addon[env]; ok && name != a {
				add(fmt.Errorf("%s: configure.sh writes secret %q, the addon reads %q", env, name, a))
			}
		}
	}
	for _, name := range n.templates {
		add(secretNameError("addon template {{resolve:secretsmanager}}", name))
	}
	return errs
}

// TestSecretNames renders the worker with Copilot's packages and checks
// every Secrets Manager name the deployment uses: the manifest's (as the
// partial ARN Copilot puts in the task definition), the addon parameter,
// the templates and configure.sh's.
func TestSecretNames(t *testing.T) {
	root := repoRoot(t)
	r := renderWithCopilot(t, root)
	ws := readWorkspace(t, root)
	dry := map[string]string{}
	for _, env := range ws.environments {
		dry[env] = configureDryRun(t, env)
	}
	n := collectSecretNames(t, r, ws.app, dry)
	for _, env := range ws.environments {
		require.Equal(t, []string{ws.app + "/" + env + "/benchling/client_secret"}, n.manifest[env], "the worker's secret as rendered for %s", env)
	}
	require.Empty(t, checkSecretNames(n))
}

// TestSecretNamesCatch: the old name, rendered by Copilot from a manifest
// that uses it, fails the check; so does a script or parameter naming a
// different secret.
func TestSecretNamesCatch(t *testing.T) {
	const oldName = "/benchling-client-secret'"
	dir := copyWorkspace(t)
	editFile(t, filepath.Join(dir, "copilot", jobName, "manifest.yml"), "/benchling/client_secret'", oldName)
	editFile(t, filepath.Join(dir, "copilot", jobName, "addons", "addons.parameters.yml"), "/benchling/client_secret'", oldName)
	r := renderWithCopilot(t, dir)
	n := collectSecretNames(t, r, appName, nil)
	require.Equal(t, []string{appName + "/dev/benchling-client-secret"}, n.manifest["dev"])
	errs := checkSecretNames(n)
	require.NotEmpty(t, errs)
	require.Contains(t, fmt.Sprint(errs), `"benchling-webhook/dev/benchling-client-secret" ends in a hyphen and six characters`)
	require.Contains(t, fmt.Sprint(errs), "manifest.yml secrets (rendered by Copilot for dev)")
	require.Contains(t, fmt.Sprint(errs), "ClientSecretName (prod)")

	good := collectSecretNames(t, renderWithCopilot(t, repoRoot(t)), appName, nil)
	good.configure = map[string][]string{"dev": {appName + "/dev/benchling-client-secret"}}
	require.Contains(t, fmt.Sprint(checkSecretNames(good)), "scripts/configure.sh (dev)")
	good.configure = map[string][]string{"dev": {appName + "/dev/other"}}
	require.Contains(t, fmt.Sprint(checkSecretNames(good)), `configure.sh writes secret "benchling-webhook/dev/other"`)
	good.configure = nil
	good.templates = []string{"benchling/token-abc123"}
	require.Contains(t, fmt.Sprint(checkSecretNames(good)), "{{resolve:secretsmanager}}")

	for name, want := range map[string]bool{
		"benchling-webhook/dev/benchling-client-secret": true,
		"x-abcdef": true, "x-ab/def": true, "app/dev/benchling/client_secret": false,
		"client-secret2": false, "client-secre": false, "-secret": true,
	} {
		require.Equal(t, want, secretNameError("test", name) != nil, name)
	}
	require.Equal(t, []string{"a/b/c", "a/b/c", "a/b/c"}, configureSecretNames(
		"<client secret on stdin> | aws secretsmanager create-secret --name a/b/c --description 'x y'\n"+
			"aws secretsmanager put-secret-value --secret-id 'a/b/c' --secret-string file:///dev/stdin\n"+
			"aws ssm put-parameter --name /a/b/bucket\n"+
			"aws secretsmanager tag-resource --secret-id a/b/c --tags x"))
}
