package deploycheck

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"benchling-webhook/internal/deploytest/cfncheck"
)

// checkOneCopy checks that copilot/<job>/addons, where Copilot reads a
// job's addons, is the top-level addons/: a relative symlink to it, or a
// copy in which every file is byte-identical (and none is missing or
// extra).
func checkOneCopy(root, job string) error {
	top := filepath.Join(root, "addons")
	link := filepath.Join(root, "copilot", job, "addons")
	fi, err := os.Lstat(link)
	if err != nil {
		return fmt.Errorf("copilot/%s/addons: %w (Copilot reads the job's addons there)", job, err)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		target, err := os.Readlink(link)
		if err != nil {
			return err
		}
		if filepath.IsAbs(target) {
			return fmt.Errorf("copilot/%s/addons links to the absolute path %s, which exists only in this checkout", job, target)
		}
		got, err := filepath.EvalSymlinks(link)
		if err != nil {
			return fmt.Errorf("copilot/%s/addons: %w", job, err)
		}
		want, err := filepath.EvalSymlinks(top)
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("copilot/%s/addons links to %s, not to addons/", job, target)
		}
		return nil
	}
	if !fi.IsDir() {
		return fmt.Errorf("copilot/%s/addons is neither a link to addons/ nor a copy of it", job)
	}
	files := func(dir string) (map[string][]byte, error) {
		out := map[string][]byte{}
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			r, _ := filepath.Rel(dir, p)
			out[r] = b
			return nil
		})
		return out, err
	}
	want, err := files(top)
	if err != nil {
		return err
	}
	got, err := files(link)
	if err != nil {
		return err
	}
	var drift []string
	for _, f := range sortedKeys(want) {
		switch g, ok := got[f]; {
		case !ok:
			drift = append(drift, f+" is missing")
		case !bytes.Equal(g, want[f]):
			drift = append(drift, f+" differs")
		}
	}
	for _, f := range sortedKeys(got) {
		if _, ok := want[f]; !ok {
			drift = append(drift, f+" is not in addons/")
		}
	}
	if len(drift) > 0 {
		return fmt.Errorf("copilot/%s/addons has drifted from addons/: %s", job, strings.Join(drift, "; "))
	}
	return nil
}

func TestOneCopyOfAddons(t *testing.T) {
	require.NoError(t, checkOneCopy(repoRoot(t), jobName))
}

func TestOneCopyOfAddonsCatches(t *testing.T) {
	// fixture lays out addons/ with two files and returns the root.
	fixture := func(t *testing.T) string {
		root := t.TempDir()
		require.NoError(t, os.MkdirAll(filepath.Join(root, "addons"), 0o755))
		require.NoError(t, os.MkdirAll(filepath.Join(root, "copilot", "worker"), 0o755))
		for name, text := range map[string]string{"workflows.yml": "Resources: {}\n", "addons.parameters.yml": "Parameters: {}\n"} {
			require.NoError(t, os.WriteFile(filepath.Join(root, "addons", name), []byte(text), 0o644))
		}
		return root
	}
	copyTo := func(t *testing.T, root string) string {
		dst := filepath.Join(root, "copilot", "worker", "addons")
		require.NoError(t, os.CopyFS(dst, os.DirFS(filepath.Join(root, "addons"))))
		return dst
	}
	for name, c := range map[string]struct {
		setup func(t *testing.T, root string)
		want  string // "" means no error
	}{
		"relative link": {func(t *testing.T, root string) {
			require.NoError(t, os.Symlink("../../addons", filepath.Join(root, "copilot", "worker", "addons")))
		}, ""},
		"identical copy": {func(t *testing.T, root string) { copyTo(t, root) }, ""},
		"missing":        {func(*testing.T, string) {}, "no such file"},
		"absolute link": {func(t *testing.T, root string) {
			require.NoError(t, os.Symlink(filepath.Join(root, "addons"), filepath.Join(root, "copilot", "worker", "addons")))
		}, "absolute path"},
		"link elsewhere": {func(t *testing.T, root string) {
			require.NoError(t, os.MkdirAll(filepath.Join(root, "other"), 0o755))
			require.NoError(t, os.Symlink("../../other", filepath.Join(root, "copilot", "worker", "addons")))
		}, "not to addons/"},
		"copy edited": {func(t *testing.T, root string) {
			dst := copyTo(t, root)
			require.NoError(t, os.WriteFile(filepath.Join(dst, "workflows.yml"), []byte("Resources: {} \n"), 0o644))
		}, "workflows.yml differs"},
		"copy missing a file": {func(t *testing.T, root string) {
			require.NoError(t, os.Remove(filepath.Join(copyTo(t, root), "addons.parameters.yml")))
		}, "addons.parameters.yml is missing"},
		"copy with an extra file": {func(t *testing.T, root string) {
			require.NoError(t, os.WriteFile(filepath.Join(copyTo(t, root), "old.yml"), nil, 0o644))
		}, "old.yml is not in addons/"},
		"top-level edited after copying": {func(t *testing.T, root string) {
			copyTo(t, root)
			require.NoError(t, os.WriteFile(filepath.Join(root, "addons", "new.yml"), nil, 0o644))
		}, "new.yml is missing"},
	} {
		t.Run(name, func(t *testing.T) {
			root := fixture(t)
			c.setup(t, root)
			err := checkOneCopy(root, "worker")
			if c.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, c.want)
		})
	}
}

// copilotReserved are the addon parameters Copilot passes itself.
var copilotReserved = []string{"App", "Env", "Name"}

// workloadStack lists what addons.parameters.yml may refer to in the
// Scheduled Job's stack (copilot-cli templates/workloads/jobs/scheduled-job/cf.yml):
// its parameters, and the resources that do not depend on the addons
// stack. The TaskRole (its ManagedPolicyArns), the TaskDefinition (its
// environment and secrets) and everything depending on them (the state
// machine, its role, the rule) take the addons stack's outputs, so
// referring to them from its parameters is a circular dependency.
var (
	workloadStackParams = []string{"AppName", "EnvName", "WorkloadName", "ContainerImage", "TaskCPU", "TaskMemory",
		"TaskCount", "LogRetention", "AddonsTemplateURL", "EnvFileARN", "LoggingEnvFileARN", "ArtifactKeyARN", "Schedule"}
	workloadStackSafe = []string{"ExecutionRole", "LogGroup"}
	workloadStackLoop = []string{"TaskDefinition", "TaskRole", "StateMachine", "StateMachineRole", "Rule", "RuleRole",
		"Service", "AddonsStack", "EnvControllerAction"}
)

// subVar matches an Fn::Sub variable (not ${!Literal}).
var subVar = regexp.MustCompile(`\$\{([^!}][^}]*)\}`)

// refs returns the logical names a value refers to: Ref targets, GetAtt
// resources and Fn::Sub variables (up to a dot).
func refs(v any) []string {
	var out []string
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			out = append(out, refs(e)...)
		}
	case map[string]any:
		for k, arg := range x {
			switch k {
			case "Ref":
				if s, ok := arg.(string); ok {
					out = append(out, s)
				}
			case "Fn::GetAtt":
				switch a := arg.(type) {
				case []any:
					if len(a) > 0 {
						if s, ok := a[0].(string); ok {
							out = append(out, s)
						}
					}
				case string:
					res, _, _ := strings.Cut(a, ".")
					out = append(out, res)
				}
			case "Fn::Sub":
				var tmpl string
				var vars map[string]any
				switch a := arg.(type) {
				case string:
					tmpl = a
				case []any:
					if len(a) == 2 {
						tmpl, _ = a[0].(string)
						vars = asMap(a[1])
						out = append(out, refs(a[1])...)
					}
				}
				for _, m := range subVar.FindAllStringSubmatch(tmpl, -1) {
					name, _, _ := strings.Cut(m[1], ".")
					if _, local := vars[name]; !local {
						out = append(out, name)
					}
				}
			default:
				out = append(out, refs(arg)...)
			}
		}
	}
	return out
}

// checkAddonsDir checks the addons directory: every YAML file is either a
// template with Resources and the App, Env and Name parameters, or the
// parameters file, which passes only declared parameters, none of the
// reserved ones, every required one, and refers to nothing that would
// make a circular dependency.
func checkAddonsDir(t testing.TB, dir string, params map[string]any) []string {
	t.Helper()
	var problems []string
	declared := map[string]map[string]any{}
	templates := 0
	for _, p := range yamlFiles(t, dir) {
		name := filepath.Base(p)
		if isParametersFile(name) {
			continue
		}
		tmpl, err := cfncheck.Load(p)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		templates++
		if len(tmpl.Resources) == 0 {
			problems = append(problems, fmt.Sprintf("%s: not a template with Resources (and not addons.parameters.yml)", name))
		}
		for _, r := range copilotReserved {
			if _, ok := tmpl.Parameters[r]; !ok {
				problems = append(problems, fmt.Sprintf("%s: Copilot passes the parameter %s, which it does not declare", name, r))
			}
		}
		for k, v := range tmpl.Parameters {
			declared[k] = v
		}
	}
	if templates == 0 {
		problems = append(problems, "no addon template")
	}
	for _, k := range sortedKeys(params) {
		switch {
		case slices.Contains(copilotReserved, k):
			problems = append(problems, fmt.Sprintf("addons.parameters.yml passes %s, which Copilot reserves (it passes App, Env and Name itself)", k))
		case declared[k] == nil:
			problems = append(problems, fmt.Sprintf("addons.parameters.yml passes %s, which no addon template declares", k))
		}
		for _, r := range refs(params[k]) {
			switch {
			case slices.Contains(workloadStackLoop, r):
				problems = append(problems, fmt.Sprintf("addons.parameters.yml: %s refers to %s, a circular dependency (it takes the addons' outputs)", k, r))
			case strings.HasPrefix(r, "AWS::"), slices.Contains(workloadStackParams, r), slices.Contains(workloadStackSafe, r):
			default:
				problems = append(problems, fmt.Sprintf("addons.parameters.yml: %s refers to %s, which the job's stack does not have", k, r))
			}
		}
	}
	for _, k := range sortedKeys(declared) {
		if _, hasDefault := declared[k]["Default"]; hasDefault || slices.Contains(copilotReserved, k) {
			continue
		}
		if _, ok := params[k]; !ok {
			problems = append(problems, fmt.Sprintf("the parameter %s has no default and addons.parameters.yml does not pass it", k))
		}
	}
	return problems
}

// readParameters returns the Parameters of addons.parameters.yml (nil if
// there is none).
func readParameters(t testing.TB, dir string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "addons.parameters.yml"))
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	doc, err := cfncheck.Parse(data)
	require.NoError(t, err, "addons.parameters.yml")
	keys := sortedKeys(doc.Raw)
	require.Equal(t, []string{"Parameters"}, keys, "addons.parameters.yml has only Parameters")
	return asMap(doc.Raw["Parameters"])
}

func TestAddonsDir(t *testing.T) {
	dir := filepath.Join(repoRoot(t), "addons")
	require.Empty(t, checkAddonsDir(t, dir, readParameters(t, dir)))
}

func TestAddonsDirCatches(t *testing.T) {
	dir := filepath.Join(repoRoot(t), "addons")
	for name, c := range map[string]struct {
		mutate func(p map[string]any)
		want   string
	}{
		"reserved":          {func(p map[string]any) { p["App"] = "x" }, "passes App, which Copilot reserves"},
		"undeclared":        {func(p map[string]any) { p["BucketArn"] = "x" }, "passes BucketArn, which no addon template declares"},
		"required missing":  {func(p map[string]any) { delete(p, "BucketName") }, "BucketName has no default"},
		"task definition":   {func(p map[string]any) { p["ExecutionRoleArn"] = map[string]any{"Ref": "TaskDefinition"} }, "refers to TaskDefinition, a circular dependency"},
		"task role":         {func(p map[string]any) { p["ExecutionRoleArn"] = map[string]any{"Fn::GetAtt": []any{"TaskRole", "Arn"}} }, "refers to TaskRole, a circular dependency"},
		"state machine":     {func(p map[string]any) { p["ExecutionRoleArn"] = map[string]any{"Ref": "StateMachine"} }, "refers to StateMachine, a circular dependency"},
		"task role in !Sub": {func(p map[string]any) { p["ExecutionRoleArn"] = map[string]any{"Fn::Sub": "${TaskRole.Arn}"} }, "refers to TaskRole, a circular dependency"},
		"addon's own names": {func(p map[string]any) {
			p["BucketName"] = map[string]any{"Fn::Sub": "{{resolve:ssm:/${App}/${Env}/bucket-name}}"}
		}, "refers to App, which the job's stack does not have"},
	} {
		t.Run(name, func(t *testing.T) {
			params := readParameters(t, dir)
			c.mutate(params)
			problems := checkAddonsDir(t, dir, params)
			require.True(t, slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, c.want) }),
				"want a problem with %q, got %q", c.want, problems)
		})
	}

	t.Run("a YAML file that is not a template", func(t *testing.T) {
		tmp := t.TempDir()
		require.NoError(t, os.CopyFS(tmp, os.DirFS(dir)))
		require.NoError(t, os.WriteFile(filepath.Join(tmp, "notes.yml"), []byte("Outputs: {}\n"), 0o644))
		problems := checkAddonsDir(t, tmp, readParameters(t, tmp))
		require.True(t, slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, "notes.yml: not a template with Resources") }), "%q", problems)
	})
	t.Run("a template without the reserved parameters", func(t *testing.T) {
		tmp := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(tmp, "extra.yml"), []byte("Resources:\n  T:\n    Type: AWS::SNS::Topic\n"), 0o644))
		problems := checkAddonsDir(t, tmp, nil)
		require.True(t, slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, "extra.yml: Copilot passes the parameter App") }), "%q", problems)
	})
}
