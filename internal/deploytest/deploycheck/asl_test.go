package deploycheck

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"benchling-webhook/internal/deploytest/cfncheck"
)

// placeholder matches a DefinitionSubstitutions placeholder.
var placeholder = regexp.MustCompile(`\$\{([^}]*)\}`)

// checkMachines checks every AWS::StepFunctions::StateMachine of the
// template: its DefinitionS3Location is a local file (resolved from base,
// as Copilot does) whose ${Placeholders} are exactly the
// DefinitionSubstitutions keys, and it logs everything (Level ALL, with
// execution data, to a destination) and traces with X-Ray. It returns the
// number of machines and the problems.
func checkMachines(tmpl *cfncheck.Template, base string) (int, []string) {
	var problems []string
	n := 0
	for _, id := range tmpl.ResourceIDs() {
		r := tmpl.Resources[id]
		if r.Type != "AWS::StepFunctions::StateMachine" {
			continue
		}
		n++
		where := fmt.Sprintf("%s: %s", tmpl.Path, id)
		p := r.Properties
		problems = append(problems, checkDefinition(where, p, base)...)

		logging := asMap(p["LoggingConfiguration"])
		if logging["Level"] != "ALL" {
			problems = append(problems, fmt.Sprintf("%s: LoggingConfiguration.Level is %v, want ALL", where, logging["Level"]))
		}
		if logging["IncludeExecutionData"] != true {
			problems = append(problems, fmt.Sprintf("%s: LoggingConfiguration.IncludeExecutionData is %v, want true", where, logging["IncludeExecutionData"]))
		}
		if dests := asList(logging["Destinations"]); len(dests) == 0 {
			problems = append(problems, fmt.Sprintf("%s: LoggingConfiguration has no Destinations", where))
		}
		if asMap(p["TracingConfiguration"])["Enabled"] != true {
			problems = append(problems, fmt.Sprintf("%s: TracingConfiguration.Enabled is not true", where))
		}
	}
	return n, problems
}

func checkDefinition(where string, p map[string]any, base string) []string {
	loc, ok := p["DefinitionS3Location"].(string)
	if !ok {
		return []string{fmt.Sprintf("%s: DefinitionS3Location is not a local path (statemachine/*.asl.json) that Copilot uploads", where)}
	}
	if _, ok := p["DefinitionString"]; ok {
		return []string{fmt.Sprintf("%s: both DefinitionS3Location and DefinitionString", where)}
	}
	file := loc
	if !filepath.IsAbs(file) {
		file = filepath.Join(base, file)
	}
	def, err := os.ReadFile(file)
	if err != nil {
		return []string{fmt.Sprintf("%s: DefinitionS3Location %s: %v", where, loc, err)}
	}
	used := map[string]bool{}
	for _, m := range placeholder.FindAllSubmatch(def, -1) {
		used[string(m[1])] = true
	}
	subs := asMap(p["DefinitionSubstitutions"])
	var problems []string
	for _, k := range sortedKeys(used) {
		if _, ok := subs[k]; !ok {
			problems = append(problems, fmt.Sprintf("%s: %s uses ${%s}, which DefinitionSubstitutions does not define", where, loc, k))
		}
	}
	for _, k := range sortedKeys(subs) {
		if !used[k] {
			problems = append(problems, fmt.Sprintf("%s: DefinitionSubstitutions defines %s, which %s does not use", where, k, loc))
		}
		if r := render(subs[k]); len(r) != 1 || r[0] == "" {
			problems = append(problems, fmt.Sprintf("%s: DefinitionSubstitutions %s is not one string", where, k))
		}
	}
	return problems
}

func TestStateMachines(t *testing.T) {
	root := repoRoot(t)
	// Copilot resolves the addon's local paths from the parent of copilot/,
	// reading the template through copilot/worker/addons.
	base, ok := cfncheck.CopilotBase(filepath.Join(root, "copilot", jobName, "addons", "workflows.yml"))
	require.True(t, ok)
	require.Equal(t, root, base)
	total := 0
	for _, path := range addonTemplatePaths(t) {
		tmpl := loadTemplate(t, path)
		tmpl.Path = rel(t, path)
		n, problems := checkMachines(tmpl, base)
		require.Empty(t, problems)
		total += n
	}
	require.Equal(t, 3, total, "the webhook, packaging and canvas state machines")
}

func TestStateMachinesCatch(t *testing.T) {
	root := repoRoot(t)
	for name, m := range map[string]struct {
		mutate func(props map[string]any)
		want   string
	}{
		"placeholder without substitution": {func(p map[string]any) {
			delete(asMap(p["DefinitionSubstitutions"]), "CatalogHost")
		}, "uses ${CatalogHost}, which DefinitionSubstitutions does not define"},
		"substitution without placeholder": {func(p map[string]any) {
			asMap(p["DefinitionSubstitutions"])["Unused"] = "x"
		}, "defines Unused, which statemachine/webhook.asl.json does not use"},
		"missing file": {func(p map[string]any) {
			p["DefinitionS3Location"] = "statemachine/missing.asl.json"
		}, "no such file"},
		"inline bucket": {func(p map[string]any) {
			p["DefinitionS3Location"] = map[string]any{"Bucket": "b", "Key": "k"}
		}, "not a local path"},
		"errors only": {func(p map[string]any) {
			asMap(p["LoggingConfiguration"])["Level"] = "ERROR"
		}, "Level is ERROR, want ALL"},
		"no execution data": {func(p map[string]any) {
			asMap(p["LoggingConfiguration"])["IncludeExecutionData"] = false
		}, "IncludeExecutionData is false"},
		"no logging": {func(p map[string]any) {
			delete(p, "LoggingConfiguration")
		}, "want ALL"},
		"no tracing": {func(p map[string]any) {
			asMap(p["TracingConfiguration"])["Enabled"] = false
		}, "TracingConfiguration.Enabled is not true"},
	} {
		t.Run(name, func(t *testing.T) {
			tmpl := loadTemplate(t, workflowsPath(t))
			m.mutate(tmpl.Resources["WebhookStateMachine"].Properties)
			_, problems := checkMachines(tmpl, root)
			require.True(t, slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, m.want) }),
				"want a problem with %q, got %q", m.want, problems)
		})
	}
}

// httpCall is one HTTP task of a state machine.
type httpCall struct {
	state, method, url string
}

// formatTemplate matches the template of States.Format('…', …).
var formatTemplate = regexp.MustCompile(`^States\.Format\('((?:[^'\\]|\\.)*)'`)

// httpCalls returns the HTTP tasks of a definition (with the
// substitutions applied), with each {} of a States.Format endpoint
// replaced by a sample path segment.
func httpCalls(def []byte, subs map[string]any) ([]httpCall, error) {
	text := placeholder.ReplaceAllStringFunc(string(def), func(m string) string {
		if r := render(subs[m[2:len(m)-1]]); len(r) == 1 {
			return r[0]
		}
		return m
	})
	var d struct{ States map[string]any }
	if err := json.Unmarshal([]byte(text), &d); err != nil {
		return nil, err
	}
	var calls []httpCall
	var errs []error
	var walk func(states map[string]any)
	walk = func(states map[string]any) {
		for _, name := range sortedKeys(states) {
			s := asMap(states[name])
			for _, b := range asList(s["Branches"]) {
				walk(asMap(asMap(b)["States"]))
			}
			for _, k := range []string{"Iterator", "ItemProcessor"} {
				walk(asMap(asMap(s[k])["States"]))
			}
			if s["Resource"] != "arn:aws:states:::http:invoke" {
				continue
			}
			p := asMap(s["Parameters"])
			c := httpCall{state: name}
			c.method, _ = p["Method"].(string)
			c.url, _ = p["ApiEndpoint"].(string)
			if f, ok := p["ApiEndpoint.$"].(string); ok {
				if m := formatTemplate.FindStringSubmatch(f); m != nil {
					c.url = strings.ReplaceAll(m[1], "{}", "x1")
				}
			}
			if c.method == "" || c.url == "" {
				errs = append(errs, fmt.Errorf("state %s: the method or endpoint is not static enough to check against IAM", name))
				continue
			}
			calls = append(calls, c)
		}
	}
	walk(d.States)
	return calls, errors.Join(errs...)
}

// stringLike reports whether s matches an IAM StringLike pattern.
func stringLike(pattern, s string) bool {
	re := regexp.QuoteMeta(pattern)
	re = strings.ReplaceAll(re, `\*`, ".*")
	re = strings.ReplaceAll(re, `\?`, ".")
	return regexp.MustCompile("^" + re + "$").MatchString(s)
}

// checkHTTPTasksAllowed checks that every HTTP task of every state
// machine is allowed by its role's states:InvokeHTTPEndpoint statements
// (endpoint and method conditions), so that tightening them cannot
// break a machine unnoticed.
// stateMachine is one AWS::StepFunctions::StateMachine of a template: its
// role, the resources whose statements apply to that role (the role and
// its managed policies), and its definition file's bytes.
type stateMachine struct {
	id, role string
	holders  []string
	resource *cfncheck.Resource
	def      []byte
}

// stateMachines returns the template's state machines, in resource order,
// with a problem for each one whose role or definition cannot be found.
func stateMachines(tmpl *cfncheck.Template, base string) ([]stateMachine, []string) {
	var out []stateMachine
	var problems []string
	for _, id := range tmpl.ResourceIDs() {
		r := tmpl.Resources[id]
		if r.Type != "AWS::StepFunctions::StateMachine" {
			continue
		}
		roleRef := render(r.Properties["RoleArn"])
		if len(roleRef) != 1 || !strings.HasSuffix(roleRef[0], ".Arn}") {
			problems = append(problems, fmt.Sprintf("%s: RoleArn is not !GetAtt <Role>.Arn", id))
			continue
		}
		m := stateMachine{id: id, role: strings.TrimSuffix(strings.TrimPrefix(roleRef[0], "${"), ".Arn}"), resource: r}
		m.holders = []string{m.role}
		if rr, ok := tmpl.Resources[m.role]; ok {
			for _, p := range render(rr.Properties["ManagedPolicyArns"]) {
				m.holders = append(m.holders, strings.TrimSuffix(strings.TrimPrefix(p, "${"), "}"))
			}
		}
		loc, _ := r.Properties["DefinitionS3Location"].(string)
		def, err := os.ReadFile(filepath.Join(base, loc))
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", id, err))
			continue
		}
		m.def = def
		out = append(out, m)
	}
	return out, problems
}

func checkHTTPTasksAllowed(t testing.TB, tmpl *cfncheck.Template, base string) (int, []string) {
	sts := statements(t, tmpl)
	machines, problems := stateMachines(tmpl, base)
	n := 0
	for _, m := range machines {
		id, role, holders, def, r := m.id, m.role, m.holders, m.def, m.resource
		calls, err := httpCalls(def, asMap(r.Properties["DefinitionSubstitutions"]))
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", id, err))
		}
		for _, c := range calls {
			n++
			allowed := slices.ContainsFunc(sts, func(s *statement) bool {
				if !slices.Contains(holders, s.resource) || !s.allows("states:InvokeHTTPEndpoint") {
					return false
				}
				urls, _ := s.conditionValues("states:HTTPEndpoint", "StringLike", "StringEquals")
				methods, hasMethods := s.conditionValues("states:HTTPMethod", "StringEquals", "StringLike")
				return slices.ContainsFunc(urls, func(p string) bool { return stringLike(p, c.url) }) &&
					(!hasMethods || slices.ContainsFunc(methods, func(p string) bool { return stringLike(p, c.method) }))
			})
			if !allowed {
				problems = append(problems, fmt.Sprintf("%s: state %s calls %s %s, which its role %s does not allow (states:InvokeHTTPEndpoint conditions)",
					id, c.state, c.method, c.url, role))
			}
		}
	}
	return n, problems
}

func TestHTTPTasksAllowed(t *testing.T) {
	root := repoRoot(t)
	n, problems := checkHTTPTasksAllowed(t, loadTemplate(t, workflowsPath(t)), root)
	require.Empty(t, problems)
	require.GreaterOrEqual(t, n, 5, "the machines' Benchling calls")

	for name, m := range map[string]mutation{
		"exports dropped": set("PackagingMachineRole", "CallBenchling", "Condition", map[string]any{
			"StringLike": map[string]any{"states:HTTPEndpoint": []any{
				sub("https://${BenchlingTenant}.benchling.com/api/v2/entries/*")}},
			"StringEquals": map[string]any{"states:HTTPMethod": []any{"GET", "POST"}},
		}, "state StartExport calls POST https://${BenchlingTenant}.benchling.com/api/v2/exports"),
		"PATCH dropped": set("CanvasMachineRole", "CallBenchling", "Condition", map[string]any{
			"StringLike":   map[string]any{"states:HTTPEndpoint": sub("https://${BenchlingTenant}.benchling.com/api/v2/app-canvases/*")},
			"StringEquals": map[string]any{"states:HTTPMethod": []any{"GET", "POST"}},
		}, "state PatchCanvas calls PATCH"),
	} {
		t.Run(name, func(t *testing.T) {
			tmpl := loadTemplate(t, workflowsPath(t))
			m.apply(t, tmpl)
			_, problems := checkHTTPTasksAllowed(t, tmpl, root)
			require.True(t, slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, m.want) }),
				"want a problem with %q, got %q", m.want, problems)
		})
	}
}
