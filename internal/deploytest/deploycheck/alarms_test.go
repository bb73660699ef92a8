package deploycheck

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"benchling-webhook/internal/deploytest/cfncheck"
)

// checkAlarms returns what is wrong with the template's CloudWatch alarms.
// The resource specification no longer marks an alarm's comparison and
// evaluation as required (an alarm may use EvaluationCriteria instead), so
// cfncheck passes an alarm that can never fire; every alarm of ours is a
// threshold alarm that notifies the alarm topic, and the dashboard's alarm
// widget lists each of them.
func checkAlarms(tmpl *cfncheck.Template) []string {
	var problems, ids []string
	for id, r := range tmpl.Resources {
		if r.Type != "AWS::CloudWatch::Alarm" {
			continue
		}
		ids = append(ids, id)
		for _, k := range []string{"AlarmName", "AlarmDescription", "ComparisonOperator", "EvaluationPeriods", "Threshold", "Period", "Statistic", "TreatMissingData"} {
			if _, ok := r.Properties[k]; !ok {
				problems = append(problems, fmt.Sprintf("%s: no %s", id, k))
			}
		}
		if a := fmt.Sprint(r.Properties["AlarmActions"]); !strings.Contains(a, "HasAlarmTopic") || !strings.Contains(a, "AlarmTopicArn") {
			problems = append(problems, fmt.Sprintf("%s: AlarmActions is not the alarm topic (%s)", id, a))
		}
	}
	sort.Strings(ids)
	var dashboard string
	for _, r := range tmpl.Resources {
		if r.Type == "AWS::CloudWatch::Dashboard" {
			dashboard = fmt.Sprint(r.Properties["DashboardBody"])
		}
	}
	for _, id := range ids {
		if !strings.Contains(dashboard, "${"+id+".Arn}") {
			problems = append(problems, fmt.Sprintf("%s: not in the dashboard's alarm widget", id))
		}
	}
	if len(ids) == 0 {
		problems = append(problems, "no alarms")
	}
	return problems
}

func TestAlarms(t *testing.T) {
	for _, path := range addonTemplatePaths(t) {
		require.Empty(t, checkAlarms(loadTemplate(t, path)), path)
	}
}

func TestAlarmsCatch(t *testing.T) {
	for name, edit := range map[string]func(tmpl *cfncheck.Template){
		"no comparison": func(tmpl *cfncheck.Template) {
			delete(tmpl.Resources["DeprecatedWebhooksAlarm"].Properties, "ComparisonOperator")
		},
		"no evaluation periods": func(tmpl *cfncheck.Template) {
			delete(tmpl.Resources["ApiRejectedAlarm"].Properties, "EvaluationPeriods")
		},
		"no topic": func(tmpl *cfncheck.Template) {
			delete(tmpl.Resources["QuiltWorkflowRejectedAlarm"].Properties, "AlarmActions")
		},
		"not on the dashboard": func(tmpl *cfncheck.Template) {
			tmpl.Resources["Dashboard"].Properties["DashboardBody"] = "{}"
		},
	} {
		tmpl := loadTemplate(t, addonTemplatePaths(t)[0])
		require.Empty(t, checkAlarms(tmpl), name)
		edit(tmpl)
		require.NotEmpty(t, checkAlarms(tmpl), name)
	}
}
