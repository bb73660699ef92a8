package deploycheck

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// runExportTimeoutSlack is what RunExport's TimeoutSeconds leaves for the
// download and the extraction once the export wait is over (the 3600 s
// the state had before job export waited for Benchling).
const runExportTimeoutSlack = 3600

// checkExportWait says what is wrong with how the packaging machine bounds
// job export: the task waits up to ExportTimeoutSeconds for Benchling's
// export before it downloads, so RunExport's TimeoutSeconds must cover the
// parameter's largest value plus the download, or Step Functions stops a
// task that is still within its own bound (States.Timeout instead of
// ExportTimeout). It also wants the three poll settings in the task's
// environment, as Go durations.
func checkExportWait(params map[string]map[string]any, definition []byte) []string {
	var problems []string
	maxWait, _ := strconv.Atoi(fmt.Sprint(params["ExportTimeoutSeconds"]["MaxValue"])) // YAML's integer type varies
	if maxWait <= 0 {
		problems = append(problems, "ExportTimeoutSeconds has no integer MaxValue: RunExport's TimeoutSeconds cannot be checked to cover it")
	}
	var def struct {
		States map[string]struct {
			TimeoutSeconds int
			Parameters     struct {
				Overrides struct {
					ContainerOverrides []struct {
						Environment []struct{ Name, Value string }
					}
				}
			}
		}
	}
	if err := json.Unmarshal(definition, &def); err != nil {
		return append(problems, "packaging.asl.json: "+err.Error())
	}
	run, ok := def.States["RunExport"]
	if !ok {
		return append(problems, "packaging.asl.json has no RunExport state")
	}
	if maxWait > 0 && run.TimeoutSeconds < maxWait+runExportTimeoutSlack {
		problems = append(problems, fmt.Sprintf("RunExport's TimeoutSeconds %d is less than ExportTimeoutSeconds' MaxValue %d plus %d for the download",
			run.TimeoutSeconds, maxWait, runExportTimeoutSlack))
	}
	env := map[string]string{}
	for _, c := range run.Parameters.Overrides.ContainerOverrides {
		for _, e := range c.Environment {
			env[e.Name] = e.Value
		}
	}
	for name, param := range map[string]string{"EXPORT_POLL_FIRST": "ExportFirstPollSeconds", "EXPORT_POLL_MAX": "ExportMaxPollSeconds", "EXPORT_WAIT": "ExportTimeoutSeconds"} {
		if want := "${" + param + "}s"; env[name] != want {
			problems = append(problems, fmt.Sprintf("RunExport's %s is %q, not %q", name, env[name], want))
		}
	}
	return problems
}

func TestExportWaitBounded(t *testing.T) {
	tmpl := loadTemplate(t, workflowsPath(t))
	def, err := os.ReadFile(filepath.Join(repoRoot(t), "statemachine", "packaging.asl.json"))
	require.NoError(t, err)
	require.Empty(t, checkExportWait(tmpl.Parameters, def))
}

// TestExportWaitBoundedCatches: a state timeout that does not cover the
// wait, a parameter without a MaxValue and a missing poll setting are
// each reported.
func TestExportWaitBoundedCatches(t *testing.T) {
	tmpl := loadTemplate(t, workflowsPath(t))
	def, err := os.ReadFile(filepath.Join(repoRoot(t), "statemachine", "packaging.asl.json"))
	require.NoError(t, err)
	short := strings.Replace(string(def), `"TimeoutSeconds": 7200`, `"TimeoutSeconds": 3600`, 1)
	require.NotEqual(t, string(def), short)
	require.Contains(t, strings.Join(checkExportWait(tmpl.Parameters, []byte(short)), "\n"), "less than ExportTimeoutSeconds' MaxValue")

	noEnv := strings.Replace(string(def), `"EXPORT_WAIT"`, `"EXPORT_WAITED"`, 1)
	require.Contains(t, strings.Join(checkExportWait(tmpl.Parameters, []byte(noEnv)), "\n"), "RunExport's EXPORT_WAIT")

	delete(tmpl.Parameters["ExportTimeoutSeconds"], "MaxValue")
	require.Contains(t, strings.Join(checkExportWait(tmpl.Parameters, def), "\n"), "no integer MaxValue")
}
