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

// ---------------------------------------------------------------- network

// imports returns the names v imports with Fn::ImportValue, rendered.
func imports(v any) []string {
	var out []string
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if k == "Fn::ImportValue" {
				out = append(out, render(e)...)
				continue
			}
			out = append(out, imports(e)...)
		}
	case []any:
		for _, e := range x {
			out = append(out, imports(e)...)
		}
	}
	slices.Sort(out)
	return out
}

// evalCondition evaluates a template's condition for parameter values
// (Fn::Equals of Refs and literals, Fn::Not, Fn::And, Fn::Or, Condition).
func evalCondition(tmpl *cfncheck.Template, v any, params map[string]string) (bool, error) {
	m := asMap(v)
	if len(m) != 1 {
		return false, fmt.Errorf("condition %v: not one function", v)
	}
	value := func(x any) (string, error) {
		if s, ok := x.(string); ok {
			return s, nil
		}
		if ref, ok := asMap(x)["Ref"].(string); ok {
			if p, ok := params[ref]; ok {
				return p, nil
			}
		}
		return "", fmt.Errorf("condition operand %v: not a literal or a known parameter", x)
	}
	for fn, arg := range m {
		args := asList(arg)
		switch fn {
		case "Condition":
			name, _ := arg.(string)
			return evalCondition(tmpl, tmpl.Conditions[name], params)
		case "Fn::Equals":
			if len(args) != 2 {
				return false, fmt.Errorf("Fn::Equals %v", arg)
			}
			a, err := value(args[0])
			if err != nil {
				return false, err
			}
			b, err := value(args[1])
			return a == b, err
		case "Fn::Not":
			b, err := evalCondition(tmpl, args[0], params)
			return !b, err
		case "Fn::And", "Fn::Or":
			all := fn == "Fn::And"
			for _, a := range args {
				b, err := evalCondition(tmpl, a, params)
				if err != nil || b != all {
					return b, err
				}
			}
			return all, nil
		}
		return false, fmt.Errorf("condition function %s not supported here", fn)
	}
	return false, nil
}

// resolveIfs replaces every Fn::If in v by the branch its condition picks,
// and every Fn::FindInMap (of literals and parameters) by its value.
func resolveIfs(tmpl *cfncheck.Template, v any, params map[string]string) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		if a, ok := x["Fn::FindInMap"].([]any); ok && len(x) == 1 && len(a) == 3 {
			var keys []string
			for _, k := range a {
				k, err := resolveIfs(tmpl, k, params)
				if err != nil {
					return nil, err
				}
				s, ok := k.(string)
				if ref, isRef := asMap(k)["Ref"].(string); isRef {
					s, ok = params[ref]
				}
				if !ok {
					return nil, fmt.Errorf("Fn::FindInMap %v: not literals and known parameters", a)
				}
				keys = append(keys, s)
			}
			val, ok := asMap(asMap(tmpl.Mappings[keys[0]])[keys[1]])[keys[2]]
			if !ok {
				return nil, fmt.Errorf("Fn::FindInMap %v: no such entry", keys)
			}
			return val, nil
		}
		if a, ok := x["Fn::If"].([]any); ok && len(x) == 1 && len(a) == 3 {
			name, _ := a[0].(string)
			b, err := evalCondition(tmpl, tmpl.Conditions[name], params)
			if err != nil {
				return nil, fmt.Errorf("condition %s: %w", name, err)
			}
			if b {
				return resolveIfs(tmpl, a[1], params)
			}
			return resolveIfs(tmpl, a[2], params)
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			r, err := resolveIfs(tmpl, e, params)
			if err != nil {
				return nil, err
			}
			out[k] = r
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			r, err := resolveIfs(tmpl, e, params)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	}
	return v, nil
}

// addonParamValues returns the addon's string parameters as deployed: the
// literal values addons.parameters.yml passes, else the template defaults.
func addonParamValues(t testing.TB, r copilotRender, addon *cfncheck.Template) map[string]string {
	t.Helper()
	out := map[string]string{}
	for name, decl := range addon.Parameters {
		if d, ok := decl["Default"].(string); ok {
			out[name] = d
		}
	}
	for name, v := range addonParams(t, r) {
		if s, ok := v.(string); ok {
			out[name] = s
		}
	}
	return out
}

// taskNetwork is where a state machine starts its ECS tasks.
type taskNetwork struct {
	AssignPublicIp string
	Subnets        []string // imported export names
	SecurityGroups []string // imported export names
}

// copilotTaskNetwork is the network Copilot's own job state machine (the
// schedule, `copilot job run`) starts the worker in, in env: what the
// manifest's network.vpc.placement means to Copilot.
func copilotTaskNetwork(t testing.TB, r copilotRender, env string) taskNetwork {
	t.Helper()
	job := mustParse(t, "job stack "+env, r.Job[env])
	sm, ok := job.Resources["StateMachine"]
	require.True(t, ok, "Copilot's job stack has its StateMachine")
	subs := asMap(sm.Properties["DefinitionSubstitutions"])
	n := taskNetwork{Subnets: imports(subs["Subnets"]), SecurityGroups: imports(subs["SecurityGroups"])}
	n.AssignPublicIp, _ = subs["AssignPublicIp"].(string)
	for i := range n.Subnets {
		n.Subnets[i] = subAppEnv(n.Subnets[i], appName, env)
	}
	for i := range n.SecurityGroups {
		n.SecurityGroups[i] = subAppEnv(n.SecurityGroups[i], appName, env)
	}
	return n
}

// checkNetwork compares the network of every state machine in the addon
// (as deployed: addon parameters, conditions resolved) with Copilot's own
// for the manifest's placement, and checks that the environment security
// group admits nothing from outside itself.
func checkNetwork(t testing.TB, r copilotRender) []error {
	t.Helper()
	var errs []error
	addon := mustParse(t, "addon", r.Addon)
	params := addonParamValues(t, r, addon)
	for _, env := range sortedKeys(r.Job) {
		want := copilotTaskNetwork(t, r, env)
		for _, id := range addon.ResourceIDs() {
			res := addon.Resources[id]
			if res.Type != "AWS::StepFunctions::StateMachine" {
				continue
			}
			subs := asMap(res.Properties["DefinitionSubstitutions"])
			if _, ok := subs["Subnets"]; !ok {
				continue
			}
			resolved, err := resolveIfs(addon, subs, params)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", id, err))
				continue
			}
			rs := asMap(resolved)
			got := taskNetwork{Subnets: imports(rs["Subnets"]), SecurityGroups: imports(rs["SecurityGroups"])}
			switch v := rs["AssignPublicIp"].(type) {
			case string:
				got.AssignPublicIp = v
			default:
				got.AssignPublicIp = params[strings.Trim(strings.Join(render(v), ""), "${}")]
			}
			for i := range got.Subnets {
				got.Subnets[i] = subAppEnv(got.Subnets[i], appName, env)
			}
			for i := range got.SecurityGroups {
				got.SecurityGroups[i] = subAppEnv(got.SecurityGroups[i], appName, env)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				errs = append(errs, fmt.Errorf("%s in %s starts tasks with %+v, but the manifest's placement means %+v to Copilot (set addons.parameters.yml AssignPublicIp to match network.vpc.placement)", id, env, got, want))
			}
		}
		envTmpl := mustParse(t, "environment "+env, r.Env[env])
		if sg := envTmpl.Resources["EnvironmentSecurityGroup"]; sg == nil {
			errs = append(errs, fmt.Errorf("environment %s: no EnvironmentSecurityGroup", env))
		} else if in := sg.Properties["SecurityGroupIngress"]; in != nil {
			errs = append(errs, fmt.Errorf("environment %s: EnvironmentSecurityGroup admits %v", env, in))
		}
		for _, id := range envTmpl.ResourceIDs() {
			res := envTmpl.Resources[id]
			if res.Type != "AWS::EC2::SecurityGroupIngress" || fmt.Sprint(res.Properties["GroupId"]) != "map[Ref:EnvironmentSecurityGroup]" {
				continue
			}
			if _, ok := res.Properties["SourceSecurityGroupId"]; !ok {
				errs = append(errs, fmt.Errorf("environment %s: %s admits traffic from outside the environment's security groups: %v", env, id, res.Properties))
			}
		}
	}
	return errs
}

// natEnvironments returns the environments that get NAT gateways: Copilot
// creates them (condition CreateNATGateways) once a workload's stack lists
// NATWorkloads among the environment parameters it updates, which a
// manifest with `placement: private` does.
func natEnvironments(t testing.TB, r copilotRender) []string {
	t.Helper()
	var out []string
	for _, env := range sortedKeys(r.Env) {
		envTmpl := mustParse(t, "environment "+env, r.Env[env])
		nats := 0
		for _, id := range envTmpl.ResourceIDs() {
			if res := envTmpl.Resources[id]; res.Type == "AWS::EC2::NatGateway" {
				nats++
				require.Equal(t, "CreateNATGateways", res.Condition, "%s: %s is conditional", env, id)
			}
		}
		require.NotZero(t, nats, "%s: Copilot's environment template has its NAT gateways (under a condition)", env)
		require.Contains(t, fmt.Sprint(envTmpl.Conditions["CreateNATGateways"]), "NATWorkloads")
		var p struct{ Parameters map[string]string }
		require.NoError(t, json.Unmarshal([]byte(r.EnvParams[env]), &p))
		natWorkloads := p.Parameters["NATWorkloads"]
		job := mustParse(t, "job stack "+env, r.Job[env])
		if ec := job.Resources["EnvControllerAction"]; ec != nil && slices.Contains(render(ec.Properties["Parameters"]), "NATWorkloads") {
			natWorkloads += "," + jobName
		}
		if strings.Trim(natWorkloads, ",") != "" {
			out = append(out, env)
		}
	}
	return out
}

// TestNetwork: by default no environment gets a NAT gateway (the worker is
// placed in the public subnets, each task with a public IP), the addon's
// machines start the tasks where Copilot's own job machine does, and the
// security group admits nothing from outside.
func TestNetwork(t *testing.T) {
	r := renderWithCopilot(t, repoRoot(t))
	require.Empty(t, natEnvironments(t, r), "environments with NAT gateways")
	for env := range r.Job {
		n := copilotTaskNetwork(t, r, env)
		require.Equal(t, "ENABLED", n.AssignPublicIp, env)
		require.Equal(t, []string{appName + "-" + env + "-PublicSubnets"}, n.Subnets, env)
	}
	require.Empty(t, checkNetwork(t, r))
}

// TestNetworkCatches breaks the placement in one place at a time.
func TestNetworkCatches(t *testing.T) {
	manifest := func(dir string) string { return filepath.Join(dir, "copilot", jobName, "manifest.yml") }
	params := func(dir string) string {
		return filepath.Join(dir, "copilot", jobName, "addons", "addons.parameters.yml")
	}
	for name, c := range map[string]struct {
		edit    func(t testing.TB, dir string)
		wantNAT bool
		want    string
	}{
		"private placement, addon still public": {func(t testing.TB, dir string) {
			editFile(t, manifest(dir), "placement: public", "placement: private")
		}, true, "PrivateSubnets"},
		"public placement, addon private": {func(t testing.TB, dir string) {
			editFile(t, params(dir), "AssignPublicIp: ENABLED", "AssignPublicIp: DISABLED")
		}, false, "AssignPublicIp:DISABLED"},
		"addon always in the private subnets": {func(t testing.TB, dir string) {
			editFile(t, filepath.Join(dir, "copilot", jobName, "addons", "workflows.yml"), "!FindInMap [Placement, !Ref AssignPublicIp, Subnets]", "PrivateSubnets")
		}, false, "PrivateSubnets"},
		"environment open to the internet": {func(t testing.TB, dir string) {
			p := filepath.Join(dir, "copilot", "environments", "dev", "manifest.yml")
			data, err := os.ReadFile(p)
			require.NoError(t, err)
			require.NotContains(t, string(data), "network:")
			require.NoError(t, os.WriteFile(p, append(data, []byte("network:\n  vpc:\n    security_group:\n      ingress:\n        - ip_protocol: tcp\n          ports: 22\n          cidr: 0.0.0.0/0\n")...), 0o644))
		}, false, "EnvironmentSecurityGroup admits"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := copyWorkspace(t)
			c.edit(t, dir)
			r := renderWithCopilot(t, dir)
			require.Equal(t, c.wantNAT, len(natEnvironments(t, r)) > 0, "NAT gateways")
			errs := checkNetwork(t, r)
			require.NotEmpty(t, errs, "the check missed it")
			require.Contains(t, fmt.Sprint(errs), c.want)
		})
	}
	// Private placement with the addon set to match is consistent (and has
	// NAT gateways): the documented one-setting switch.
	dir := copyWorkspace(t)
	editFile(t, manifest(dir), "placement: public", "placement: private")
	editFile(t, params(dir), "AssignPublicIp: ENABLED", "AssignPublicIp: DISABLED")
	r := renderWithCopilot(t, dir)
	require.NotEmpty(t, natEnvironments(t, r))
	require.Empty(t, checkNetwork(t, r))
}

// TestCopilotDropsAddonHeader records what docs/deploy.md ("After Copilot")
// says: Copilot's merge of the addon templates keeps neither
// AWSTemplateFormatVersion nor Description (harmless), and keeps every
// parameter, resource and output.
func TestCopilotDropsAddonHeader(t *testing.T) {
	r := renderWithCopilot(t, repoRoot(t))
	merged := mustParse(t, "addon", r.Addon)
	src := loadTemplate(t, workflowsPath(t))
	require.Contains(t, src.Raw, "AWSTemplateFormatVersion")
	require.Contains(t, src.Raw, "Description")
	require.NotContains(t, merged.Raw, "AWSTemplateFormatVersion")
	require.NotContains(t, merged.Raw, "Description")
	require.Equal(t, sortedKeys(src.Parameters), sortedKeys(merged.Parameters))
	require.Equal(t, src.ResourceIDs(), merged.ResourceIDs())
	require.Equal(t, sortedKeys(src.Outputs), sortedKeys(merged.Outputs))
}
