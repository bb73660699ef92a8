package emulate

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"benchling-webhook/internal/testkit/testenv"
)

// TestRunTaskSize: a task-level Cpu/Memory override must be a Fargate
// size, as ECS requires; the task definition's size needs none.
func TestRunTaskSize(t *testing.T) {
	size := func(cpu, memory string) error {
		_, _, err := checkRunTask(runTaskInput(t, func(m map[string]any) {
			o := m["Overrides"].(map[string]any)
			o["Cpu"], o["Memory"] = cpu, memory
		}))
		return err
	}
	for _, ok := range [][2]string{{"", ""}, {"256", "512"}, {"256", "2048"}, {"512", "4096"}, {"1024", "2048"}, {"4096", "30720"}, {"8192", "20480"}, {"16384", "122880"}} {
		require.NoError(t, size(ok[0], ok[1]), "%v", ok)
	}
	for _, bad := range [][2]string{{"256", "4096"}, {"256", "256"}, {"512", "512"}, {"1024", "1536"}, {"8192", "18432"}, {"300", "1024"}, {"256", ""}, {"", "512"}, {"256", "0512"}, {"0.25 vCPU", "0.5 GB"}} {
		err := size(bad[0], bad[1])
		var te *taskError
		require.True(t, errors.As(err, &te), "%v: %v", bad, err)
		require.Equal(t, "ECS.ClientException", te.Name, "%v", bad)
	}
}

// TestVerifyTaskSize: the webhook machine's Verify task asks for Fargate's
// smallest size, 0.25 vCPU / 512 MiB (job verify needs little: see
// docs/performance.md, "Junk").
func TestVerifyTaskSize(t *testing.T) {
	root, err := testenv.RepoRoot()
	require.NoError(t, err)
	raw, err := os.ReadFile(filepath.Join(root, "statemachine", "webhook.asl.json"))
	require.NoError(t, err)
	var def struct {
		States map[string]struct {
			Parameters struct {
				Overrides struct{ Cpu, Memory string }
			}
		}
	}
	require.NoError(t, json.Unmarshal(raw, &def))
	o := def.States["Verify"].Parameters.Overrides
	require.Equal(t, [2]string{"256", "512"}, [2]string{o.Cpu, o.Memory})
	require.True(t, fargateSize(o.Cpu, o.Memory))
}

// TestTaskResultSize: the stopped task reports the size it ran at.
func TestTaskResultSize(t *testing.T) {
	task := ecsTask{ID: "t1", ARN: "arn:aws:ecs:us-east-1:000000000000:task/local/t1"}
	out, err := taskResult(task, containerRun{}, json.RawMessage(`{"Cpu":"256","Memory":"512","ContainerOverrides":[]}`))
	require.NoError(t, err)
	require.Equal(t, "256", out.(map[string]any)["Cpu"])
	require.Equal(t, "512", out.(map[string]any)["Memory"])
	out, err = taskResult(task, containerRun{}, json.RawMessage(`{"ContainerOverrides":[]}`))
	require.NoError(t, err)
	require.Equal(t, "1024", out.(map[string]any)["Cpu"])
}
