package deploycheck

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"benchling-webhook/internal/deploytest/cfncheck"
)

// checkRevisionRule checks the rule that turns Quilt's package-revision
// events into canvas statuses (docs/architecture.md, "Canvas status"): on
// the default bus, matching Quilt's created revisions of this bucket below
// the package prefix, delivering the whole event (no Input,
// InputPath or InputTransformer: the canvas machine reads the event's
// fields) to the canvas machine, through a role for events.amazonaws.com
// that may start that machine and nothing else.
func checkRevisionRule(t testing.TB, tmpl *cfncheck.Template) []string {
	r, ok := tmpl.Resources["PackageRevisionRule"]
	if !ok || r.Type != "AWS::Events::Rule" {
		return []string{"no AWS::Events::Rule PackageRevisionRule"}
	}
	var problems []string
	p := r.Properties
	if bus := render(p["EventBusName"]); len(bus) > 0 && bus[0] != "default" {
		problems = append(problems, fmt.Sprintf("PackageRevisionRule: EventBusName %v, want the default bus", bus))
	}
	if s, _ := p["State"].(string); s != "ENABLED" {
		problems = append(problems, fmt.Sprintf("PackageRevisionRule: State %q, want ENABLED", s))
	}
	pat := asMap(p["EventPattern"])
	detail := asMap(pat["detail"])
	for _, c := range []struct {
		what string
		got  []string
		want string
	}{
		{"source", render(pat["source"]), "com.quiltdata"},
		{"detail-type", render(pat["detail-type"]), "package-revision"},
		{"detail.type", render(detail["type"]), "created"},
		{"detail.bucket", render(detail["bucket"]), "${BucketName}"},
		{"detail.handle prefix", render(asMap(first(detail["handle"]))["prefix"]), "${PackagePrefix}/"},
	} {
		if !slices.Equal(c.got, []string{c.want}) {
			problems = append(problems, fmt.Sprintf("PackageRevisionRule: EventPattern %s is %q, want [%q]", c.what, c.got, c.want))
		}
	}
	targets := asList(p["Targets"])
	if len(targets) != 1 {
		return append(problems, fmt.Sprintf("PackageRevisionRule: %d targets, want the canvas machine only", len(targets)))
	}
	tg := asMap(targets[0])
	if arn := render(tg["Arn"]); !slices.Equal(arn, []string{"${CanvasStateMachine}"}) {
		problems = append(problems, fmt.Sprintf("PackageRevisionRule: target %q, want !Ref CanvasStateMachine", arn))
	}
	for _, k := range []string{"Input", "InputPath", "InputTransformer"} {
		if _, ok := tg[k]; ok {
			problems = append(problems, fmt.Sprintf("PackageRevisionRule: target has %s; the canvas machine takes the whole event", k))
		}
	}
	role := strings.TrimSuffix(strings.TrimPrefix(strings.Join(render(tg["RoleArn"]), ""), "${"), ".Arn}")
	rr, ok := tmpl.Resources[role]
	if !ok {
		return append(problems, fmt.Sprintf("PackageRevisionRule: target RoleArn %q is not !GetAtt <Role>.Arn", role))
	}
	trust := fmt.Sprint(rr.Properties["AssumeRolePolicyDocument"])
	if !strings.Contains(trust, "events.amazonaws.com") || strings.Contains(trust, "states.amazonaws.com") {
		problems = append(problems, fmt.Sprintf("%s: trusted by %s, want events.amazonaws.com only", role, trust))
	}
	if len(asList(rr.Properties["ManagedPolicyArns"])) > 0 {
		problems = append(problems, fmt.Sprintf("%s: has managed policies", role))
	}
	for _, s := range statements(t, tmpl) {
		if s.resource != role {
			continue
		}
		if !slices.Equal(s.actions, []string{"states:StartExecution"}) || !slices.Equal(s.resources, []string{"${CanvasStateMachine}"}) {
			problems = append(problems, s.problem("allows %v on %v, want states:StartExecution on the canvas machine only", s.actions, s.resources))
		}
	}
	return problems
}

// first returns the first element of a list, or v itself.
func first(v any) any {
	if l := asList(v); len(l) > 0 {
		return l[0]
	}
	return v
}

func TestPackageRevisionRule(t *testing.T) {
	require.Empty(t, checkRevisionRule(t, loadTemplate(t, workflowsPath(t))))

	for name, m := range map[string]struct {
		mutate func(t *testing.T, tmpl *cfncheck.Template)
		want   string
	}{
		"any bucket": {func(t *testing.T, tmpl *cfncheck.Template) {
			delete(asMap(asMap(tmpl.Resources["PackageRevisionRule"].Properties["EventPattern"])["detail"]), "bucket")
		}, "detail.bucket"},
		"any handle": {func(t *testing.T, tmpl *cfncheck.Template) {
			delete(asMap(asMap(tmpl.Resources["PackageRevisionRule"].Properties["EventPattern"])["detail"]), "handle")
		}, "detail.handle prefix"},
		"transformed": {func(t *testing.T, tmpl *cfncheck.Template) {
			asMap(asList(tmpl.Resources["PackageRevisionRule"].Properties["Targets"])[0])["InputPath"] = "$.detail"
		}, "target has InputPath"},
		"role starts anything": {func(t *testing.T, tmpl *cfncheck.Template) {
			st := findStatement(t, tmpl, "PackageRevisionRuleRole", "StartCanvasMachine")
			st["Resource"] = "*"
		}, "want states:StartExecution on the canvas machine only"},
	} {
		t.Run(name, func(t *testing.T) {
			tmpl := loadTemplate(t, workflowsPath(t))
			m.mutate(t, tmpl)
			problems := checkRevisionRule(t, tmpl)
			require.True(t, slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, m.want) }),
				"want a problem with %q, got %q", m.want, problems)
		})
	}
}
