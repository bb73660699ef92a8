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
		states, err := taskStates(def)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", id, err))
			continue
		}
		for _, name := range sortedKeys(states) {
			s := states[name]
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
			if action == "states:StartExecution" && len(machineName) == 1 {
				// The machine it starts must be one a grant names: its own
				// ($$.StateMachine.Id) or the substitution's ARN.
				target := arnOfMachine(machineName[0])
				if a, ok := s.Parameters["StateMachineArn"].(string); ok {
					target = a
					if ph := placeholder.FindStringSubmatch(a); ph != nil {
						if r := render(asMap(m.resource.Properties["DefinitionSubstitutions"])[ph[1]]); len(r) == 1 {
							target = r[0]
						}
					}
				}
				if !slices.ContainsFunc(grants, func(g *statement) bool {
					return slices.ContainsFunc(g.resources, func(res string) bool { return stringLike(res, target) })
				}) {
					problems = append(problems, fmt.Sprintf("%s: state %s starts %s, which its role %s may not start", id, name, target, role))
				}
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

// aslState is the part of a state the checks read: its type and resource,
// and the states of a Map's ItemProcessor (or Iterator) or a Parallel's
// branches.
type aslState struct {
	Type, Resource string
	Parameters     map[string]any
	ItemProcessor  *struct{ States map[string]aslState }
	Iterator       *struct{ States map[string]aslState }
	Branches       []struct{ States map[string]aslState }
}

// taskStates returns every state of a definition by name, the states of
// Map and Parallel states included (names are unique across a definition).
func taskStates(def []byte) (map[string]aslState, error) {
	var d struct{ States map[string]aslState }
	if err := json.Unmarshal(def, &d); err != nil {
		return nil, err
	}
	out := map[string]aslState{}
	var walk func(map[string]aslState)
	walk = func(states map[string]aslState) {
		for name, s := range states {
			out[name] = s
			for _, p := range []*struct{ States map[string]aslState }{s.ItemProcessor, s.Iterator} {
				if p != nil {
					walk(p.States)
				}
			}
			for _, b := range s.Branches {
				walk(b.States)
			}
		}
	}
	walk(d.States)
	return out, nil
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
		"no canvas mapping": set("WebhookMachineRole", "RecordCanvas", "Action", "s3:GetObject",
			"state WriteCanvasMapping calls arn:aws:states:::aws-sdk:s3:putObject, which needs s3:PutObject"),
		"no status write": set("CanvasMachineRole", "EntryStatus", "Action", "s3:GetObject",
			"state WriteStatus calls arn:aws:states:::aws-sdk:s3:putObject, which needs s3:PutObject"),
		// A state inside the Map (ItemProcessor) is checked too.
		"no forgetting a deleted canvas": set("CanvasMachineRole", "CanvasMappings", "Action", "s3:GetObject",
			"state ForgetCanvas calls arn:aws:states:::aws-sdk:s3:deleteObject, which needs s3:DeleteObject"),
		"no status report": set("PackagingMachineRole", "ReportStatus", "Action", "states:DescribeExecution",
			"state ReportFailure starts arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:${App}-${Env}-${Name}-canvas, which its role PackagingMachineRole may not start"),
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
