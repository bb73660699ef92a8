package deploycheck

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"benchling-webhook/internal/deploytest/cfncheck"
)

// taskActions maps the Task resources the machines use to the IAM action
// each needs (Step Functions calls the API with the machine's role).
var taskActions = map[string]string{
	"arn:aws:states:::aws-sdk:s3:putObject":          "s3:PutObject",
	"arn:aws:states:::aws-sdk:s3:getObject":          "s3:GetObject",
	"arn:aws:states:::aws-sdk:s3:headObject":         "s3:GetObject",
	"arn:aws:states:::aws-sdk:s3:deleteObject":       "s3:DeleteObject",
	"arn:aws:states:::aws-sdk:s3:listObjectsV2":      "s3:ListBucket",
	"arn:aws:states:::aws-sdk:sfn:describeExecution": "states:DescribeExecution",
	"arn:aws:states:::states:startExecution":         "states:StartExecution",
	"arn:aws:states:::sqs:sendMessage":               "sqs:SendMessage",
}

// checkSDKTasksAllowed checks that every AWS SDK and service Task of every
// state machine has its IAM action in its role (or the role's managed
// policies), and that a machine describes only its own executions (the
// packaging lease's holder is one of them): a state added without its
// permission fails here, not on the first deployed run.
func checkSDKTasksAllowed(t testing.TB, tmpl *cfncheck.Template, base string) (int, []string) {
	sts := statements(t, tmpl)
	machines, problems := stateMachines(tmpl, base)
	n := 0
	for _, m := range machines {
		id, role, holders, def := m.id, m.role, m.holders, m.def
		machineName := render(m.resource.Properties["StateMachineName"])
		var d struct {
			States map[string]struct{ Type, Resource string }
		}
		if err := json.Unmarshal(def, &d); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", id, err))
			continue
		}
		for _, name := range sortedKeys(d.States) {
			s := d.States[name]
			action, ok := taskActions[s.Resource]
			if s.Type != "Task" || !ok {
				continue
			}
			n++
			grants := slices.DeleteFunc(slices.Clone(sts), func(st *statement) bool {
				return !slices.Contains(holders, st.resource) || !st.allows(action)
			})
			if len(grants) == 0 {
				problems = append(problems, fmt.Sprintf("%s: state %s calls %s, which needs %s; its role %s does not allow it", id, name, s.Resource, action, role))
				continue
			}
			if action != "states:DescribeExecution" || len(machineName) != 1 {
				continue
			}
			own := strings.Replace(arnOfMachine(machineName[0]), ":stateMachine:", ":execution:", 1) + ":*"
			for _, g := range grants {
				for _, res := range g.resources {
					if res != own {
						problems = append(problems, g.problem("states:DescribeExecution on %q for state %s of %s, not its own executions %q", res, name, id, own))
					}
				}
			}
		}
	}
	return n, problems
}

// arnOfMachine is the ARN a state machine's policy statements name it by.
func arnOfMachine(name string) string {
	return "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:" + name
}

func TestSDKTasksAllowed(t *testing.T) {
	root := repoRoot(t)
	n, problems := checkSDKTasksAllowed(t, loadTemplate(t, workflowsPath(t)), root)
	require.Empty(t, problems)
	require.GreaterOrEqual(t, n, 10, "the machines' S3, SQS and Step Functions tasks")

	for name, m := range map[string]mutation{
		"no describe for the lease holder": set("PackagingMachineRole", "DescribeLeaseHolder", "Action", "states:ListExecutions",
			"state DescribeHolder calls arn:aws:states:::aws-sdk:sfn:describeExecution, which needs states:DescribeExecution"),
		"describe any execution": set("PackagingMachineRole", "DescribeLeaseHolder", "Resource",
			sub("arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:*"), "not its own executions"),
		"no release": set("PackagingMachineRole", "PackagingLease", "Action", "s3:GetObject",
			"state ReleaseLease calls arn:aws:states:::aws-sdk:s3:deleteObject, which needs s3:DeleteObject"),
		"no pending check": set("PackagingMachineRole", "ListPackagingControl", "Action", "s3:GetObject",
			"state CheckPending calls arn:aws:states:::aws-sdk:s3:listObjectsV2, which needs s3:ListBucket"),
	} {
		t.Run(name, func(t *testing.T) {
			tmpl := loadTemplate(t, workflowsPath(t))
			m.apply(t, tmpl)
			_, problems := checkSDKTasksAllowed(t, tmpl, root)
			require.True(t, slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, m.want) }),
				"want a problem with %q, got %q", m.want, problems)
		})
	}
}
