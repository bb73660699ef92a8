package cfncheck

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// These tests need no Node tools.

func TestParseIntrinsics(t *testing.T) {
	tests := map[string]struct {
		yaml string
		want any
	}{
		"Ref":                {`!Ref Env`, map[string]any{"Ref": "Env"}},
		"Condition":          {`!Condition IsProd`, map[string]any{"Condition": "IsProd"}},
		"GetAtt string":      {`!GetAtt Db.Endpoint.Address`, map[string]any{"Fn::GetAtt": []any{"Db", "Endpoint.Address"}}},
		"GetAtt list":        {`!GetAtt [Role, Arn]`, map[string]any{"Fn::GetAtt": []any{"Role", "Arn"}}},
		"GetAtt long":        {`{"Fn::GetAtt": [Role, Arn]}`, map[string]any{"Fn::GetAtt": []any{"Role", "Arn"}}},
		"Sub string":         {`!Sub "${AWS::Region}-${!Lit}"`, map[string]any{"Fn::Sub": "${AWS::Region}-${!Lit}"}},
		"Sub list":           {"!Sub\n- ${A}\n- A: !Ref B", map[string]any{"Fn::Sub": []any{"${A}", map[string]any{"A": map[string]any{"Ref": "B"}}}}},
		"Join nested":        {`!Join [",", !Split [";", !ImportValue x]]`, map[string]any{"Fn::Join": []any{",", map[string]any{"Fn::Split": []any{";", map[string]any{"Fn::ImportValue": "x"}}}}}},
		"Select GetAZs":      {`!Select [0, !GetAZs ""]`, map[string]any{"Fn::Select": []any{int64(0), map[string]any{"Fn::GetAZs": ""}}}},
		"If":                 {`!If [C, 1, !Ref AWS::NoValue]`, map[string]any{"Fn::If": []any{"C", int64(1), map[string]any{"Ref": "AWS::NoValue"}}}},
		"Equals Not And Or":  {`!Or [!Not [!Equals [a, b]], !And [!Condition X, !Condition Y]]`, map[string]any{"Fn::Or": []any{map[string]any{"Fn::Not": []any{map[string]any{"Fn::Equals": []any{"a", "b"}}}}, map[string]any{"Fn::And": []any{map[string]any{"Condition": "X"}, map[string]any{"Condition": "Y"}}}}}},
		"FindInMap":          {`!FindInMap [M, !Ref Env, k]`, map[string]any{"Fn::FindInMap": []any{"M", map[string]any{"Ref": "Env"}, "k"}}},
		"Base64 is a string": {`!Base64 123`, map[string]any{"Fn::Base64": "123"}},
		"Cidr":               {`!Cidr [10.0.0.0/16, 4, 8]`, map[string]any{"Fn::Cidr": []any{"10.0.0.0/16", int64(4), int64(8)}}},
		"scalars":            {`[2012-10-17, "1", 1, 1.5, true, null]`, []any{"2012-10-17", "1", int64(1), 1.5, true, nil}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tmpl, err := Parse([]byte("Resources:\n  R:\n    Type: X\n    Properties:\n      V: " + indent(tc.yaml)))
			require.NoError(t, err)
			require.Equal(t, tc.want, tmpl.Resources["R"].Properties["V"])
		})
	}
}

// indent indents the continuation lines of a property value.
func indent(s string) string {
	out := ""
	for _, c := range s {
		out += string(c)
		if c == '\n' {
			out += "        "
		}
	}
	return out
}

func TestParseErrors(t *testing.T) {
	tests := map[string]struct{ yaml, err string }{
		"unknown tag":   {"Resources:\n  R: !Reff x\n", "line 2: unknown tag !Reff"},
		"duplicate key": {"Resources:\n  R: 1\n  R: 2\n", `line 3: duplicate key "R"`},
		"GetAtt no dot": {"Outputs:\n  O:\n    Value: !GetAtt Role\n", `line 3: !GetAtt "Role" is not Resource.Attribute`},
		"Ref a list":    {"Outputs:\n  O:\n    Value: !Ref [a]\n", "line 3: !Ref takes a name"},
		"not an object": {"- a\n", "line 1: template is not an object"},
		"bad YAML":      {"a: [\n", "parse YAML"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			require.ErrorContains(t, err, tc.err)
		})
	}
}

func TestLoad(t *testing.T) {
	tmpl, err := Load(goodTemplate)
	require.NoError(t, err)
	require.Equal(t, goodTemplate, tmpl.Path)

	m := tmpl.Resources["Machine"]
	require.Equal(t, "AWS::StepFunctions::StateMachine", m.Type)
	require.Equal(t, []string{"MachineRole", "LogGroup"}, m.DependsOn)
	require.Equal(t, map[string]any{"Fn::GetAtt": []any{"MachineRole", "Arn"}}, m.Properties["RoleArn"])
	require.Equal(t, "IsProd", tmpl.Resources["FailedAlarm"].Condition)
	require.Equal(t, "String", tmpl.Parameters["Env"]["Type"])
	require.Contains(t, tmpl.Conditions, "IsProd")
	require.Contains(t, tmpl.Outputs["ApiUrl"], "Export")
	require.Equal(t, []string{"LogGroup", "MachineRole", "ReadPolicy"}, tmpl.ResourceIDs()[:3])

	// Lines point at keys, at list items, and inside short-form intrinsics.
	for path, line := range map[string]int{
		"Resources": 39,
		"Resources.MachineRole.Properties.Policies":                                                 58,
		"Resources.MachineRole.Properties.Policies[0]":                                              59,
		"Resources.Machine.Properties.RoleArn.Fn::GetAtt[1]":                                        112,
		"Resources.EventMethod.Properties.Integration.RequestTemplates.application/json.Fn::Sub[0]": 177,
		"Resources.Machine.Properties.RoleArn.NotThere[3]":                                          112, // nearest enclosing value
	} {
		require.Equal(t, line, tmpl.Line(path), path)
	}
}

func TestPaths(t *testing.T) {
	p := JoinIndex(JoinKey(JoinKey(JoinKey("", "Resources"), "M"), "method.response.header.X"), 2)
	require.Equal(t, `Resources.M["method.response.header.X"][2]`, p)
	require.Equal(t, `Resources.M["method.response.header.X"]`, parentPath(p))
	require.Equal(t, `Resources.M`, parentPath(parentPath(p)))
	require.Equal(t, `Resources`, parentPath(`Resources.M`))
	require.Equal(t, ``, parentPath(`Resources`))
}

func TestCopilotBase(t *testing.T) {
	base, ok := CopilotBase("testdata/ws/copilot/job/addons/good.yml")
	require.True(t, ok)
	want, err := filepath.Abs("testdata/ws")
	require.NoError(t, err)
	require.Equal(t, want, base)
	_, ok = CopilotBase("testdata/bad/type_typo.yml")
	require.False(t, ok)
}

func ExampleParse() {
	tmpl, err := Parse([]byte(`
Resources:
  Machine:
    Type: AWS::StepFunctions::StateMachine
    Properties:
      RoleArn: !GetAtt Role.Arn
      DefinitionS3Location: statemachine/job.asl.json
      DefinitionSubstitutions:
        Region: !Sub ${AWS::Region}
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	m := tmpl.Resources["Machine"]
	fmt.Println(m.Type)
	fmt.Println(m.Properties["RoleArn"])
	fmt.Println(m.Properties["DefinitionSubstitutions"])
	fmt.Println(tmpl.LocalFiles)
	// Output:
	// AWS::StepFunctions::StateMachine
	// map[Fn::GetAtt:[Role Arn]]
	// map[Region:map[Fn::Sub:${AWS::Region}]]
	// [{Resources.Machine.Properties.DefinitionS3Location 7 statemachine/job.asl.json}]
}
