package deploycheck

import (
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"benchling-webhook/internal/deploytest/cfncheck"
	"benchling-webhook/internal/testkit/testenv"
)

// The names the deployment uses; the docs must use the same.
const (
	appName = "benchling-webhook"
	jobName = "worker"
)

// repoRoot returns the repository root (the directory of the go.mod that
// declares module benchling-webhook).
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := testenv.RepoRoot()
	require.NoError(t, err, "locate repository root")
	return root
}

// isParametersFile reports whether name is Copilot's addon parameters
// file, which is not a template.
func isParametersFile(name string) bool {
	return name == "addons.parameters.yml" || name == "addons.parameters.yaml"
}

// yamlFiles returns the *.yml and *.yaml files directly in dir, sorted.
func yamlFiles(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var out []string
	for _, e := range entries {
		if e.Type().IsRegular() && (strings.HasSuffix(e.Name(), ".yml") || strings.HasSuffix(e.Name(), ".yaml")) {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(out)
	return out
}

// addonTemplatePaths returns the CloudFormation templates in addons/
// (every YAML file but the parameters file), and fails if there is none.
func addonTemplatePaths(t testing.TB) []string {
	t.Helper()
	var out []string
	for _, p := range yamlFiles(t, filepath.Join(repoRoot(t), "addons")) {
		if !isParametersFile(filepath.Base(p)) {
			out = append(out, p)
		}
	}
	require.NotEmpty(t, out, "no templates in addons/")
	return out
}

// loadTemplate parses a template freshly (tests mutate what they load).
func loadTemplate(t testing.TB, path string) *cfncheck.Template {
	t.Helper()
	tmpl, err := cfncheck.Load(path)
	require.NoError(t, err)
	return tmpl
}

// workflowsPath is the addon template the specific rules are about.
func workflowsPath(t testing.TB) string {
	return filepath.Join(repoRoot(t), "addons", "workflows.yml")
}

// rel returns path relative to the repository root, for messages.
func rel(t testing.TB, path string) string {
	if r, err := filepath.Rel(repoRoot(t), path); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return path
}

// render returns the strings a value can take, in Fn::Sub notation: a
// literal is itself, !Sub its template (variables given in its map are
// replaced by their own rendering when that is one string), !Ref X is
// "${X}", !GetAtt X.A is "${X.A}", an import "${Fn::ImportValue}", !If
// both branches (AWS::NoValue dropped), a list every element. The lint
// rules match these strings against patterns written the same way.
func render(v any) []string {
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		return []string{x}
	case int64:
		return []string{strconv.FormatInt(x, 10)}
	case float64:
		return []string{strconv.FormatFloat(x, 'f', -1, 64)}
	case bool:
		return []string{strconv.FormatBool(x)}
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, render(e)...)
		}
		return out
	case map[string]any:
		if len(x) != 1 {
			return []string{"${object}"}
		}
		for fn, arg := range x {
			switch fn {
			case "Ref":
				if arg == "AWS::NoValue" {
					return nil
				}
				s, _ := arg.(string)
				return []string{"${" + s + "}"}
			case "Fn::GetAtt":
				switch a := arg.(type) {
				case []any:
					parts := render(a)
					return []string{"${" + strings.Join(parts, ".") + "}"}
				case string:
					return []string{"${" + a + "}"}
				}
			case "Fn::Sub":
				switch a := arg.(type) {
				case string:
					return []string{a}
				case []any:
					if len(a) != 2 {
						return []string{"${Fn::Sub}"}
					}
					s, _ := a[0].(string)
					vars, _ := a[1].(map[string]any)
					for k, val := range vars {
						if r := render(val); len(r) == 1 {
							s = strings.ReplaceAll(s, "${"+k+"}", r[0])
						}
					}
					return []string{s}
				}
			case "Fn::If":
				if a, ok := arg.([]any); ok && len(a) == 3 {
					return append(render(a[1]), render(a[2])...)
				}
			case "Fn::Join":
				if a, ok := arg.([]any); ok && len(a) == 2 {
					sep, _ := a[0].(string)
					var parts []string
					for _, e := range asList(a[1]) {
						r := render(e)
						if len(r) == 0 {
							continue
						}
						parts = append(parts, r[0])
					}
					return []string{strings.Join(parts, sep)}
				}
			}
			return []string{"${" + fn + "}"}
		}
	}
	return []string{"${unknown}"}
}

// asList returns v as a list: a list itself, nil for nil, else [v].
func asList(v any) []any {
	switch x := v.(type) {
	case nil:
		return nil
	case []any:
		return x
	}
	return []any{v}
}

// asMap returns v as an object, or nil.
func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
