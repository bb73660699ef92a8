package emulate

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"benchling-webhook/internal/quiltpkg"
	"benchling-webhook/internal/testkit/testenv"

	"github.com/stretchr/testify/require"
)

// deployedPlaceholders lists, per machine, the DefinitionSubstitutions the
// deployment must provide (docs/architecture.md, "Substitutions").
var deployedPlaceholders = map[string][]string{
	Webhook: {"AssignPublicIp", "BenchlingBaseURL", "BenchlingConnectionArn", "BucketName", "CanvasStateMachineArn", "CatalogHost", "ClusterArn",
		"ContainerName", "PackagePrefix", "PackagingStateMachineArn", "SecurityGroups", "Subnets", "TaskDefinitionFamily"},
	Packaging: {"AssignPublicIp", "BenchlingBaseURL", "BenchlingConnectionArn", "CanvasStateMachineArn", "ClusterArn", "ContainerName",
		"ExportFirstPollSeconds", "ExportMaxPollSeconds", "ExportTimeoutSeconds", "PackagePrefix", "PackagerQueueUrl", "QuiltWorkflow", "SecurityGroups", "Subnets", "TaskDefinitionFamily"},
	Canvas: {"BenchlingBaseURL", "BenchlingConnectionArn", "BucketName", "CatalogHost", "PackagePrefix", "StatusTimeoutSeconds"},
}

// sampleValues are deployment-like values for every placeholder.
var sampleValues = map[string]string{
	"AssignPublicIp":           "DISABLED",
	"BenchlingBaseURL":         "https://tenant.benchling.com",
	"BenchlingConnectionArn":   "arn:aws:events:us-east-1:123456789012:connection/benchling-dev/6f0a",
	"BucketName":               "quilt-bucket",
	"CanvasStateMachineArn":    "arn:aws:states:us-east-1:123456789012:stateMachine:benchling-dev-canvas",
	"CatalogHost":              "catalog.example.com",
	"ClusterArn":               "arn:aws:ecs:us-east-1:123456789012:cluster/benchling-dev-Cluster-abc",
	"ContainerName":            "job",
	"ExportFirstPollSeconds":   "2",
	"ExportMaxPollSeconds":     "30",
	"ExportTimeoutSeconds":     "1800",
	"PackagePrefix":            "benchling",
	"PackagerQueueUrl":         "https://sqs.us-east-1.amazonaws.com/123456789012/quilt-PackagerQueue",
	"PackagingStateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:benchling-dev-packaging",
	"QuiltWorkflow":            "benchling",
	"SecurityGroups":           "sg-0123456789abcdef0",
	"StatusTimeoutSeconds":     "900",
	"Subnets":                  "subnet-0a,subnet-0b",
	"TaskDefinitionFamily":     "benchling-dev-job",
}

func readMachine(t *testing.T, name string) []byte {
	t.Helper()
	root, err := testenv.RepoRoot()
	require.NoError(t, err)
	b, err := os.ReadFile(filepath.Join(root, "statemachine", name+".asl.json"))
	require.NoError(t, err)
	return b
}

// TestPlaceholders checks that each machine uses exactly the documented
// placeholders, so a new one cannot reach a deployment without a value.
func TestPlaceholders(t *testing.T) {
	re := regexp.MustCompile(`\$\{([^}]*)\}`)
	for name, want := range deployedPlaceholders {
		t.Run(name, func(t *testing.T) {
			set := map[string]bool{}
			for _, m := range re.FindAllSubmatch(readMachine(t, name), -1) {
				set[string(m[1])] = true
			}
			var got []string
			for k := range set {
				got = append(got, k)
			}
			sort.Strings(got)
			require.Equal(t, want, got)
		})
	}
}

func TestSubstitute(t *testing.T) {
	out, err := Substitute([]byte(`{"a":"${A}","b":"x${B}y"}`), map[string]string{"A": "1", "B": "2"})
	require.NoError(t, err)
	require.JSONEq(t, `{"a":"1","b":"x2y"}`, string(out))
	_, err = Substitute([]byte(`"${A}${C}${D}"`), map[string]string{"A": "1"})
	require.ErrorContains(t, err, "C, D")
}

// TestDefinitions checks what Step Functions would check and more: valid
// JSON, JSONPath only, every Task resource one the local hub emulates
// (so the e2e suite covers it), every Fail state named, and asl-validator
// (the schema and reachability) on the substituted definitions.
func TestDefinitions(t *testing.T) {
	n, err := testenv.NodeTools("")
	testenv.Need(t, testenv.EnvRequireS3, err)
	validator, err := n.Module("asl-validator/dist/bin/asl-validator.js")
	testenv.Need(t, testenv.EnvRequireS3, err)
	node := n.Bin
	emulated := map[string]bool{
		"arn:aws:states:::ecs:runTask.sync": true, "arn:aws:states:::http:invoke": true,
		"arn:aws:states:::aws-sdk:s3:putObject": true, "arn:aws:states:::sqs:sendMessage": true,
		"arn:aws:states:::states:startExecution": true,
		"arn:aws:states:::aws-sdk:s3:getObject":  true, "arn:aws:states:::aws-sdk:s3:headObject": true,
		"arn:aws:states:::aws-sdk:s3:deleteObject": true, "arn:aws:states:::aws-sdk:s3:listObjectsV2": true,
		"arn:aws:states:::aws-sdk:sfn:describeExecution": true,
	}
	for name := range deployedPlaceholders {
		t.Run(name, func(t *testing.T) {
			raw := readMachine(t, name)
			require.NotContains(t, string(raw), "JSONata")
			// aws-local-stepfunctions 3.0.0 evaluates "IsPresent": false (and
			// "IsNull": false) as never true; {"Not": {…, "IsPresent": true}}
			// means the same in AWS and works in both.
			require.NotRegexp(t, `"(IsPresent|IsNull)":\s*false`, string(raw))
			def, err := Substitute(raw, sampleValues)
			require.NoError(t, err)
			var d struct {
				QueryLanguage string
				States        map[string]struct {
					Type, Resource, Error string
					Retry                 []struct{ ErrorEquals []string }
				}
			}
			require.NoError(t, json.Unmarshal(def, &d))
			for sn, s := range d.States {
				switch s.Type {
				case "Task":
					require.True(t, emulated[s.Resource], "state %s: resource %s is not emulated locally", sn, s.Resource)
				case "Fail":
					require.NotEmpty(t, s.Error, "Fail state %s has no Error name", sn)
				}
				for _, r := range s.Retry {
					if len(r.ErrorEquals) > 1 {
						require.NotContains(t, r.ErrorEquals, "States.ALL", "state %s: States.ALL must be alone", sn)
					}
					require.NotContains(t, r.ErrorEquals, "States.TaskFailed", "state %s: a Retry on States.TaskFailed would retry exit 3", sn)
				}
			}
			file := filepath.Join(t.TempDir(), name+".json")
			require.NoError(t, os.WriteFile(file, def, 0o644))
			out, err := exec.Command(node, validator, "--json-path", file).CombinedOutput()
			require.NoError(t, err, "asl-validator: %s", out)
			require.True(t, strings.Contains(string(out), "is valid"), "%s", out)
		})
	}
}

// TestCanvasLinksAsQuiltpkg keeps the canvas machine's links equal to
// quiltpkg's (the one home of the catalog link rules): the revision link of
// "up to date" and the links block, with each {} filled in as the machine
// fills it.
func TestCanvasLinksAsQuiltpkg(t *testing.T) {
	def, err := Substitute(readMachine(t, Canvas), sampleValues)
	require.NoError(t, err)
	var d struct {
		States map[string]struct{ Parameters map[string]any }
	}
	require.NoError(t, json.Unmarshal(def, &d))
	format := regexp.MustCompile(`^States\.Format\('((?:[^'\\]|\\.)*)'`)
	fill := func(expr string, args ...string) string {
		m := format.FindStringSubmatch(expr)
		require.NotNil(t, m, "not a States.Format: %s", expr)
		out := m[1]
		for _, a := range args {
			out = strings.Replace(out, "{}", a, 1)
		}
		require.NotContains(t, out, "{}")
		return out
	}
	entity, hash := "etr_1", "0123abcd"
	pkg := sampleValues["PackagePrefix"] + "/" + entity
	host, bucket := sampleValues["CatalogHost"], sampleValues["BucketName"]

	status := d.States["RevisionReport"].Parameters["status"].(map[string]any)
	require.Equal(t, quiltpkg.RevisionLink(host, bucket, pkg, hash), fill(status["link.$"].(string), entity, hash))

	md := fill(d.States["Markdown"].Parameters["value.$"].(string), entity, entity, entity, "STATUS")
	l := quiltpkg.CatalogLinks(host, bucket, pkg)
	require.Equal(t, "# Quilt Links\n---\n- [Quilt Catalog]("+l.Catalog+")\n- [Drop Zone]("+l.Revise+")\n- [QuiltSync]("+l.QuiltSync+")\n---\n> STATUS", md)
}
