package emulate

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// runTaskInput is ecs:runTask's parameters as the definitions send them,
// with edit applied to the decoded form.
func runTaskInput(t *testing.T, edit func(m map[string]any)) json.RawMessage {
	t.Helper()
	m := map[string]any{
		"LaunchType":     "FARGATE",
		"Cluster":        clusterArn,
		"TaskDefinition": taskFamily,
		"NetworkConfiguration": map[string]any{"AwsvpcConfiguration": map[string]any{
			"Subnets": []string{"subnet-1"}, "SecurityGroups": []string{"sg-1"}, "AssignPublicIp": "DISABLED"}},
		"Overrides": map[string]any{"ContainerOverrides": []any{map[string]any{
			"Name": containerName, "Command": []string{"verify"},
			"Environment": []any{map[string]string{"Name": "URL", "Value": "https://x/y?X-Amz-Signature=s"}}}}},
	}
	if edit != nil {
		edit(m)
	}
	b, err := json.Marshal(m)
	require.NoError(t, err)
	return b
}

func TestCheckRunTask(t *testing.T) {
	o, raw, err := checkRunTask(runTaskInput(t, nil))
	require.NoError(t, err)
	require.Equal(t, []string{"verify"}, o.Command)
	require.Contains(t, string(raw), `"ContainerOverrides"`)

	tests := map[string]struct {
		edit func(m map[string]any)
		want string
	}{
		"unknown field": {func(m map[string]any) { m["Count"] = 2 }, "ECS.InvalidParameterException"},
		"launch type":   {func(m map[string]any) { m["LaunchType"] = "EC2" }, "ECS.InvalidParameterException"},
		"cluster":       {func(m map[string]any) { m["Cluster"] = "other" }, "ECS.ClusterNotFoundException"},
		"family":        {func(m map[string]any) { m["TaskDefinition"] = "other" }, "ECS.ClientException"},
		"no subnets":    {func(m map[string]any) { delete(m, "NetworkConfiguration") }, "ECS.InvalidParameterException"},
		"too long": {func(m map[string]any) {
			m["Overrides"].(map[string]any)["ContainerOverrides"].([]any)[0].(map[string]any)["Command"] = []string{strings.Repeat("x", overridesLimit)}
		}, "ECS.InvalidParameterException"},
		"other container": {func(m map[string]any) {
			m["Overrides"].(map[string]any)["ContainerOverrides"].([]any)[0].(map[string]any)["Name"] = "sidecar"
		}, "ECS.InvalidParameterException"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, _, err := checkRunTask(runTaskInput(t, tc.edit))
			var te *taskError
			require.True(t, errors.As(err, &te), "%v", err)
			require.Equal(t, tc.want, te.Name)
		})
	}
}

func TestTaskResult(t *testing.T) {
	task := ecsTask{ID: "t1", ARN: "arn:aws:ecs:us-east-1:000000000000:task/local/t1"}
	now := time.Now().UTC()
	out, err := taskResult(task, containerRun{exit: 0, created: now, stopped: now}, json.RawMessage(`{}`))
	require.NoError(t, err)
	require.Equal(t, task.ARN, out.(map[string]any)["TaskArn"])

	_, err = taskResult(task, containerRun{exit: 3, created: now, stopped: now}, json.RawMessage(`{}`))
	var te *taskError
	require.True(t, errors.As(err, &te))
	require.Equal(t, "States.TaskFailed", te.Name)
	var cause struct{ Containers []struct{ ExitCode int } }
	require.NoError(t, json.Unmarshal([]byte(te.Cause), &cause))
	require.Equal(t, 3, cause.Containers[0].ExitCode)
}
