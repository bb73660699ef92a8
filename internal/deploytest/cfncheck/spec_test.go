package cfncheck

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"benchling-webhook/internal/testkit/testenv"

	"github.com/stretchr/testify/require"
)

// loadSpec loads the spec once per test binary (about half a second).
var loadSpec = sync.OnceValues(func() (*Spec, error) {
	return LoadSpec(context.Background(), SpecOptions{})
})

// testSpec returns the shared spec. If the Node tools are missing it skips
// the test with a hint to run `make tools`, unless BW_REQUIRE_S3=1 or
// CI=true, where it fails instead.
func testSpec(t *testing.T) *Spec {
	t.Helper()
	start := time.Now()
	s, err := loadSpec()
	testenv.Need(t, testenv.EnvRequireS3, err)
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Logf("spec %s: %d resource types, %d property types, loaded in %s",
			s.Version, len(s.Resources), len(s.Types), d.Round(time.Millisecond))
	}
	return s
}

const goodTemplate = "testdata/ws/copilot/job/addons/good.yml"

func TestGoodTemplate(t *testing.T) {
	s := testSpec(t)
	tmpl, err := Load(goodTemplate)
	require.NoError(t, err)
	for _, p := range s.Check(tmpl) {
		t.Error(p)
	}

	// The local definition file Copilot uploads, resolved as Copilot does.
	require.Len(t, tmpl.LocalFiles, 1)
	lf := tmpl.LocalFiles[0]
	require.Equal(t, "Resources.Machine.Properties.DefinitionS3Location", lf.Path)
	require.Equal(t, "statemachine/job.asl.json", lf.File)
	base, ok := CopilotBase(goodTemplate)
	require.True(t, ok)
	require.FileExists(t, filepath.Join(base, lf.File))
}

func TestValidate(t *testing.T) {
	testSpec(t) // skip without the tools
	probs, err := Validate(context.Background(), "testdata/bad/missing_required.yml")
	require.NoError(t, err)
	require.Len(t, probs, 1)
	require.Contains(t, probs[0].String(), `line 7: Resources.Machine.Properties: missing required property "RoleArn"`)

	_, err = Validate(context.Background(), "testdata/nonexistent.yml")
	require.ErrorIs(t, err, os.ErrNotExist)
}

// TestBadTemplates checks that each template in testdata/bad has exactly
// the one expected problem.
func TestBadTemplates(t *testing.T) {
	s := testSpec(t)
	tests := map[string]struct {
		path    string
		line    int
		message string
	}{
		"type_typo": {
			"Resources.Machine.Type", 6,
			`unknown resource type "AWS::StepFunctions::StateMachin"; did you mean "AWS::StepFunctions::StateMachine"?`,
		},
		"property_typo": {
			"Resources.Machine.Properties.DefinitionSubstitution", 10,
			`unknown property "DefinitionSubstitution" of AWS::StepFunctions::StateMachine; did you mean "DefinitionSubstitutions"?`,
		},
		"nested_property_typo": {
			"Resources.MachineRole.Properties.Policies[0].PolicyDocumentt", 16,
			`unknown property "PolicyDocumentt" of Policy; did you mean "PolicyDocument"?`,
		},
		"missing_required": {
			"Resources.Machine.Properties", 7,
			`missing required property "RoleArn" of AWS::StepFunctions::StateMachine`,
		},
		"string_for_list": {
			"Resources.MachineRole.Properties.ManagedPolicyArns", 14,
			"expected a list, got a string",
		},
		"object_for_string": {
			"Resources.Logs.Properties.LogGroupName", 6,
			"expected a string, got an object",
		},
		"bad_integer": {
			"Resources.Logs.Properties.RetentionInDays", 6,
			`expected an integer, got "thirty"`,
		},
		"bad_enum": {
			"Resources.Connection.Properties.AuthorizationType", 7,
			"OAUTH_CLIENT_CREDENTIAL is not one of the allowed values API_KEY, BASIC, OAUTH_CLIENT_CREDENTIALS",
		},
		"getatt_unknown_attribute": {
			"Resources.Machine.Properties.RoleArn.Fn::GetAtt", 22,
			`MachineRole (AWS::IAM::Role) has no attribute "Name"; it has Arn, RoleId`,
		},
		"ref_missing": {
			"Resources.Machine.Properties.RoleArn.Ref", 11,
			`"MachineRol" is not a parameter, resource or pseudo parameter; did you mean "MachineRole"?`,
		},
		"sub_missing": {
			"Resources.Logs.Properties.LogGroupName.Fn::Sub", 9,
			`"Missing" is not a parameter, resource or pseudo parameter`,
		},
		"sub_getatt_missing": {
			"Resources.Logs.Properties.LogGroupName.Fn::Sub[0]", 9,
			`resource "Nowhere" does not exist`,
		},
		"condition_missing": {
			"Resources.Logs.Condition", 8,
			`condition "IsPrd" does not exist; did you mean "IsProd"?`,
		},
		"if_condition_missing": {
			"Resources.Logs.Properties.RetentionInDays.Fn::If[0]", 10,
			`condition "Nope" does not exist`,
		},
		"dependson_missing": {
			"Resources.Logs.DependsOn[1]", 11,
			`DependsOn: resource "Nothing" does not exist`,
		},
		"parameter_type": {
			"Parameters.Env.Type", 4,
			`invalid parameter type "Strin"`,
		},
		"output_ref_missing": {
			"Outputs.Arn.Value.Ref", 9,
			`"Log" is not a parameter, resource or pseudo parameter; did you mean "Logs"?`,
		},
		"if_branch_type": {
			"Resources.Logs.Properties.RetentionInDays.Fn::If[2]", 13,
			"13 is not one of the allowed values 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tmpl, err := Load(filepath.Join("testdata", "bad", name+".yml"))
			require.NoError(t, err)
			probs := s.Check(tmpl)
			require.Equal(t, []Problem{{Path: tc.path, Line: tc.line, Message: tc.message}}, probs)
		})
	}
	// Every fixture has a case.
	files, err := filepath.Glob("testdata/bad/*.yml")
	require.NoError(t, err)
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yml")
		require.Contains(t, tests, name, "no test case for %s", f)
	}
}

// TestGoodTemplateMutations breaks the good template in one place each and
// checks that exactly that place is reported: the nested property types of
// the resources it uses are really checked.
func TestGoodTemplateMutations(t *testing.T) {
	s := testSpec(t)
	good, err := os.ReadFile(goodTemplate)
	require.NoError(t, err)
	tests := map[string]struct {
		old, new string
		path     string
		message  string
	}{
		"oauth client id case": {
			"ClientID: !Ref", "ClientId: !Ref",
			"Resources.Connection.Properties.AuthParameters.OAuthParameters.ClientParameters.ClientId",
			`unknown property "ClientId" of ClientParameters; did you mean "ClientID"?`,
		},
		"request templates typo": {
			"RequestTemplates:", "RequestTemplate:",
			"Resources.EventMethod.Properties.Integration.RequestTemplate",
			`unknown property "RequestTemplate" of Integration; did you mean "RequestTemplates"?`,
		},
		"integration response as string": {
			"IntegrationResponses:\n          - StatusCode: \"200\"", "IntegrationResponses:\n          - \"200\"\n          - StatusCode: \"201\"",
			"Resources.EventMethod.Properties.Integration.IntegrationResponses[0]",
			"expected an object (IntegrationResponse), got a string",
		},
		"access log setting typo": {
			"DestinationArn: !GetAtt AccessLogs.Arn", "DestinationARN: !GetAtt AccessLogs.Arn",
			"Resources.Stage.Properties.AccessLogSetting.DestinationARN",
			`unknown property "DestinationARN" of AccessLogSetting; did you mean "DestinationArn"?`,
		},
		"logging level enum": {
			"Level: ALL", "Level: EVERYTHING",
			"Resources.Machine.Properties.LoggingConfiguration.Level",
			"EVERYTHING is not one of the allowed values ALL, ERROR, FATAL, OFF",
		},
		"tracing not boolean": {
			"Enabled: !If [IsProd, true, !Ref AWS::NoValue]", "Enabled: !If [IsProd, yes please, !Ref AWS::NoValue]",
			"Resources.Machine.Properties.TracingConfiguration.Enabled.Fn::If[1]",
			`expected a boolean, got "yes please"`,
		},
		"substitution value object": {
			"Literal: abc", "Literal: {a: b}",
			"Resources.Machine.Properties.DefinitionSubstitutions.Literal",
			"expected a string or an integer or a boolean, got an object",
		},
		"s3 location URL is not packaged": {
			"DefinitionS3Location: statemachine/job.asl.json", "DefinitionS3Location: s3://bucket/job.asl.json",
			"Resources.Machine.Properties.DefinitionS3Location",
			"expected an object (S3Location), got a string",
		},
		"tag without value": {
			"Value: 30", "Values: 30",
			"Resources.MachineRole.Properties.Tags[1].Values",
			`unknown property "Values" of Tag; did you mean "Value"?`,
		},
		"alarm threshold": {
			"Threshold: 1", "Threshold: one",
			"Resources.FailedAlarm.Properties.Threshold",
			`expected a number, got "one"`,
		},
		"sub attribute": {
			"${Machine.Name}", "${Machine.Nam}",
			"Resources.FailedAlarm.Properties.AlarmDescription.Fn::Sub",
			`Machine (AWS::StepFunctions::StateMachine) has no attribute "Nam"; it has`,
		},
		"sub variable map": {
			"- MachineArn: !Ref Machine", "- MachineArm: !Ref Machine",
			"Resources.EventMethod.Properties.Integration.RequestTemplates.application/json.Fn::Sub[0]",
			`"MachineArn" is not a parameter, resource or pseudo parameter`,
		},
		"find in map": {
			"!FindInMap [EnvConfig,", "!FindInMap [EnvConf,",
			"Resources.Machine.Properties.DefinitionSubstitutions.LogLevel.Fn::FindInMap[0]",
			`mapping "EnvConf" does not exist`,
		},
		"condition refers to resource": {
			"IsProd: !Equals [!Ref Env, prod]", "IsProd: !Equals [!Ref Api, prod]",
			"Conditions.IsProd.Fn::Equals[0].Ref",
			"conditions can only refer to parameters, not resource Api",
		},
		"condition in condition": {
			"- !Condition HasSubnets", "- !Condition HasSubnet",
			"Conditions.ProdWithSubnets.Fn::And[1].Condition",
			`condition "HasSubnet" does not exist; did you mean "HasSubnets"?`,
		},
		"output condition": {
			"Condition: IsProd\n    Value", "Condition: IsProduction\n    Value",
			"Outputs.AlarmName.Condition",
			`condition "IsProduction" does not exist`,
		},
		"join arity": {
			`!Join [",", !GetAZs ""]`, `!Join [",", !GetAZs "", x]`,
			"Resources.Machine.Properties.DefinitionSubstitutions.Azs.Fn::Join",
			"Fn::Join takes [delimiter, list]",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			src := strings.Replace(string(good), tc.old, tc.new, 1)
			require.NotEqual(t, string(good), src, "%q not in the good template", tc.old)
			tmpl, err := Parse([]byte(src))
			require.NoError(t, err)
			probs := s.Check(tmpl)
			require.Len(t, probs, 1, "%v", probs)
			require.Equal(t, tc.path, probs[0].Path)
			require.Contains(t, probs[0].Message, tc.message)
			require.NotZero(t, probs[0].Line)
		})
	}
}

// TestCheckStructure covers the checks outside resource properties, each
// on a small inline template.
func TestCheckStructure(t *testing.T) {
	s := testSpec(t)
	const logs = "  Logs:\n    Type: AWS::Logs::LogGroup\n"
	tests := map[string]struct {
		yaml string
		want []string // "Path: Message" of each problem; none if empty
	}{
		"unknown section": {
			"Resource:\n  X: 1\nResources:\n" + logs,
			[]string{`Resource: unknown template section "Resource"`},
		},
		"SAM Globals": {
			"Transform: AWS::Serverless-2016-10-31\nGlobals:\n  Function:\n    Timeout: 3\nResources:\n" + logs, nil,
		},
		"no resources": {
			"Parameters:\n  P:\n    Type: String\n",
			[]string{"Resources: the template has no resources"},
		},
		"resource attribute typo": {
			"Resources:\n" + logs + "    Propertie:\n      RetentionInDays: 7\n",
			[]string{`Resources.Logs.Propertie: unknown resource attribute "Propertie"; did you mean "Properties"?`},
		},
		"deletion policy": {
			"Resources:\n" + logs + "    DeletionPolicy: Keep\n",
			[]string{"Resources.Logs.DeletionPolicy: DeletionPolicy must be one of Delete, Retain, RetainExceptOnCreate, Snapshot"},
		},
		"custom resource": {
			"Resources:\n  A:\n    Type: Custom::A\n    Properties:\n      Whatever: [1]\n  B:\n    Type: AWS::CloudFormation::CustomResource\n    Properties:\n      ServiceToken: arn\n      X: !GetAtt A.Anything\n",
			[]string{`Resources.A.Properties: custom resource A has no ServiceToken`},
		},
		"nested stack outputs and dotted attributes": {
			"Resources:\n  Stack:\n    Type: AWS::CloudFormation::Stack\n    Properties:\n      TemplateURL: https://example.com/t.yml\n" +
				"  Db:\n    Type: AWS::RDS::DBInstance\n    Properties:\n      DBInstanceClass: db.t3.micro\n" +
				"Outputs:\n  A:\n    Value: !GetAtt Stack.Outputs.BucketName\n  B:\n    Value: !Sub ${Db.Endpoint.Address}:${Db.Endpoint.Port}\n" +
				"  C:\n    Value: !GetAtt Stack.Output.BucketName\n",
			[]string{`Outputs.C.Value.Fn::GetAtt: Stack (AWS::CloudFormation::Stack) has no attribute "Output.BucketName"`},
		},
		"outputs": {
			"Resources:\n" + logs + "Outputs:\n  A:\n    Description: no value\n  B:\n    Value: x\n    Export: !Sub x\n  C:\n    Value: x\n    Exports:\n      Name: y\n",
			[]string{
				"Outputs.A: output A has no Value",
				"Outputs.B.Export: Export must be an object with just a Name",
				`Outputs.C.Exports: unknown output attribute "Exports"`,
			},
		},
		"parameters": {
			"Parameters:\n  A:\n    Type: String\n    Defualt: x\n  B:\n    Description: no type\n  C:\n    Type: AWS::SSM::Parameter::Value<List<AWS::EC2::Subnet::Id>>\n  D:\n    Type: List<AWS::EC2::VPC::Id>\nResources:\n" + logs,
			[]string{`Parameters.A.Defualt: unknown parameter attribute "Defualt"`, "Parameters.B: parameter B has no Type"},
		},
		"intrinsic arity and names": {
			"Resources:\n" + logs + "    Properties:\n      LogGroupName: !Join [a, b, c]\n      KmsKeyId: {\"Fn::Joins\": [a, [b]]}\n",
			[]string{
				"Resources.Logs.Properties.LogGroupName.Fn::Join: Fn::Join takes [delimiter, list]",
				"Resources.Logs.Properties.KmsKeyId.Fn::Joins: unknown intrinsic function Fn::Joins",
			},
		},
		"condition-shaped object in properties": {
			"Resources:\n" + logs + "    Properties:\n      LogGroupName: {Condition: x}\n",
			[]string{"Resources.Logs.Properties.LogGroupName: expected a string, got an object"},
		},
		"GetAtt in conditions": {
			"Conditions:\n  C: !Equals [!GetAtt Logs.Arn, x]\nResources:\n" + logs,
			[]string{"Conditions.C.Fn::Equals[0].Fn::GetAtt: conditions cannot use Fn::GetAtt"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tmpl, err := Parse([]byte(tc.yaml))
			require.NoError(t, err)
			var got []string
			for _, p := range s.Check(tmpl) {
				got = append(got, p.Path+": "+p.Message)
			}
			require.Len(t, got, len(tc.want), "%q", got)
			for i := range got {
				require.True(t, strings.HasPrefix(got[i], tc.want[i]), "got %q, want %q", got[i], tc.want[i])
			}
		})
	}
}
