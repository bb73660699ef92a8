package deploycheck

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"benchling-webhook/internal/deploytest/cfncheck"
)

// statement is one IAM policy statement of a template, with its values
// rendered to strings in Fn::Sub notation (see render).
type statement struct {
	file     string // template, relative to the repository root
	resource string // logical ID of the resource holding the policy
	resType  string
	sid      string // Sid, or "statement N" when there is none
	line     int
	raw      map[string]any

	effect      string
	actions     []string
	notAction   bool
	resources   []string
	notResource bool
	principal   bool // a resource policy (it names a Principal)
	condition   map[string]any
}

func (s *statement) String() string {
	return fmt.Sprintf("%s:%d: %s (%s) statement %s", s.file, s.line, s.resource, s.resType, s.sid)
}

// problem formats a finding about s.
func (s *statement) problem(format string, args ...any) string {
	return s.String() + ": " + fmt.Sprintf(format, args...)
}

// allows reports whether s allows action (IAM action names are
// case-insensitive).
func (s *statement) allows(action string) bool {
	if s.effect != "Allow" {
		return false
	}
	for _, a := range s.actions {
		if strings.EqualFold(a, action) {
			return true
		}
	}
	return false
}

// allowsService reports whether s allows any action of service ("s3").
func (s *statement) allowsService(service string) bool {
	if s.effect != "Allow" {
		return false
	}
	for _, a := range s.actions {
		if strings.HasPrefix(strings.ToLower(a), service+":") {
			return true
		}
	}
	return false
}

// statements returns every policy statement in the template's resources:
// identity policies (inline, managed) and resource policies (an API's
// Policy, a queue or bucket policy). Trust policies
// (AssumeRolePolicyDocument) are left out.
func statements(t testing.TB, tmpl *cfncheck.Template) []*statement {
	t.Helper()
	var out []*statement
	for _, id := range tmpl.ResourceIDs() {
		r := tmpl.Resources[id]
		base := cfncheck.JoinKey(cfncheck.JoinKey(cfncheck.JoinKey("", "Resources"), id), "Properties")
		var walk func(v any, path string)
		walk = func(v any, path string) {
			switch x := v.(type) {
			case map[string]any:
				if st, ok := x["Statement"]; ok {
					for i, e := range expandIf(asList(st), cfncheck.JoinKey(path, "Statement")) {
						out = append(out, newStatement(tmpl, id, r.Type, e.value, e.path, i))
					}
					return
				}
				for _, k := range sortedKeys(x) {
					if k == "AssumeRolePolicyDocument" {
						continue
					}
					walk(x[k], cfncheck.JoinKey(path, k))
				}
			case []any:
				for i, e := range x {
					walk(e, cfncheck.JoinIndex(path, i))
				}
			}
		}
		walk(r.Properties, base)
	}
	return out
}

type located struct {
	value map[string]any
	path  string
}

// expandIf returns the objects of a list, replacing an Fn::If by both of
// its branches.
func expandIf(list []any, path string) []located {
	var out []located
	for i, e := range list {
		p := cfncheck.JoinIndex(path, i)
		m := asMap(e)
		if m == nil {
			continue
		}
		if branches, ok := m["Fn::If"].([]any); ok && len(m) == 1 && len(branches) == 3 {
			for b := 1; b <= 2; b++ {
				if bm := asMap(branches[b]); bm != nil && bm["Ref"] != "AWS::NoValue" {
					out = append(out, located{bm, cfncheck.JoinIndex(cfncheck.JoinKey(p, "Fn::If"), b)})
				}
			}
			continue
		}
		out = append(out, located{m, p})
	}
	return out
}

func newStatement(tmpl *cfncheck.Template, id, typ string, m map[string]any, path string, i int) *statement {
	s := &statement{
		file:     tmpl.Path,
		resource: id,
		resType:  typ,
		sid:      fmt.Sprintf("statement %d", i),
		line:     tmpl.Line(path),
		raw:      m,
	}
	if sid, ok := m["Sid"].(string); ok && sid != "" {
		s.sid = sid
	}
	s.effect, _ = m["Effect"].(string)
	if a, ok := m["NotAction"]; ok {
		s.notAction = true
		s.actions = render(a)
	} else {
		s.actions = render(m["Action"])
	}
	if r, ok := m["NotResource"]; ok {
		s.notResource = true
		s.resources = render(r)
	} else {
		s.resources = render(m["Resource"])
	}
	_, s.principal = m["Principal"]
	s.condition = asMap(m["Condition"])
	return s
}

// conditionValues returns the rendered values of the condition key (case
// insensitive) under any of the operators, and whether it was found.
func (s *statement) conditionValues(key string, operators ...string) ([]string, bool) {
	var vals []string
	found := false
	for op, body := range s.condition {
		if !slices.Contains(operators, op) {
			continue
		}
		for k, v := range asMap(body) {
			if strings.EqualFold(k, key) {
				found = true
				vals = append(vals, render(v)...)
			}
		}
	}
	return vals, found
}

// noResourceLevel lists the actions that do not support resource-level
// permissions and may therefore be granted on "*": CloudWatch Logs
// delivery (Step Functions logging) and X-Ray (tracing).
var noResourceLevel = []string{
	"logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
	"logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies", "logs:DescribeLogGroups",
	"xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets",
}

// sensitiveServices and sensitiveActions are the data, invoke and
// pass-role actions that must never be granted on a wildcard resource.
var (
	sensitiveServices = []string{"s3", "sqs", "states", "secretsmanager", "dynamodb", "kms"}
	sensitiveActions  = []string{
		"ecs:RunTask", "ecs:StopTask", "ecs:DescribeTasks", "iam:PassRole",
		"events:RetrieveConnectionCredentials", "lambda:InvokeFunction", "execute-api:Invoke",
	}
)

func isSensitive(action string) bool {
	service, _, _ := strings.Cut(strings.ToLower(action), ":")
	if slices.Contains(sensitiveServices, service) {
		return true
	}
	return slices.ContainsFunc(sensitiveActions, func(a string) bool { return strings.EqualFold(a, action) })
}

func isNoResourceLevel(action string) bool {
	return slices.ContainsFunc(noResourceLevel, func(a string) bool { return strings.EqualFold(a, action) })
}

// ipRestrictedInvoke reports whether s is the API's IP allow list: a
// resource policy allowing execute-api:Invoke only from given addresses.
func (s *statement) ipRestrictedInvoke() bool {
	if !s.principal || s.resType != "AWS::ApiGateway::RestApi" {
		return false
	}
	vals, ok := s.conditionValues("aws:SourceIp", "IpAddress")
	return ok && len(vals) > 0 && !slices.Contains(vals, "*")
}

// splitARN splits an ARN at its first five colons, ignoring colons inside
// ${...} (arn:${AWS::Partition}:...). It returns nil if there are fewer.
func splitARN(s string) []string {
	var parts []string
	depth, start := 0, 0
	for i := 0; i < len(s) && len(parts) < 5; i++ {
		switch {
		case strings.HasPrefix(s[i:], "${"):
			depth++
			i++
		case s[i] == '}' && depth > 0:
			depth--
		case s[i] == ':' && depth == 0:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	if len(parts) < 5 {
		return nil
	}
	return append(parts, s[start:])
}

// indexOutsideVars is strings.IndexAny(s, chars) ignoring ${...}.
func indexOutsideVars(s, chars string) int {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch {
		case strings.HasPrefix(s[i:], "${"):
			depth++
			i++
		case s[i] == '}' && depth > 0:
			depth--
		case depth == 0 && strings.IndexByte(chars, s[i]) >= 0:
			return i
		}
	}
	return -1
}

// broadResource reports whether a rendered resource covers more than one
// deployment's resources: "*", an ARN with a wildcard service, region or
// account, or whose resource part is (or, after its resource type, starts
// with) a wildcard, like arn:aws:s3:::*, arn:aws:s3:::bucket/* or
// arn:aws:states:r:a:stateMachine:*; and anything else with a "*" that is
// not an ARN (execute-api:/*).
func broadResource(r string) bool {
	if r == "*" {
		return true
	}
	if !strings.HasPrefix(r, "arn:") {
		return strings.Contains(r, "*")
	}
	p := splitARN(r)
	if p == nil || p[5] == "" {
		return true
	}
	if strings.Contains(p[1], "*") || strings.Contains(p[2], "*") || p[3] == "*" || p[4] == "*" {
		return true
	}
	res := p[5]
	if strings.HasPrefix(res, "*") {
		return true
	}
	if i := indexOutsideVars(res, "/:"); i >= 0 {
		rest := res[i+1:]
		return rest == "" || strings.HasPrefix(rest, "*")
	}
	return false
}

// lintStatement applies the rules for every statement: no wildcard or
// NotAction actions, no NotResource, no "*" resource except for actions
// without resource-level permissions, and no wildcard resource on data,
// invoke or pass-role actions (an API's IP allow list excepted).
func lintStatement(s *statement) []string {
	if s.effect != "Allow" {
		return nil // a Deny may be as broad as it likes
	}
	var out []string
	if s.notAction {
		out = append(out, s.problem("NotAction allows every other action"))
	}
	if s.notResource {
		out = append(out, s.problem("NotResource allows every other resource"))
	}
	if len(s.actions) == 0 {
		out = append(out, s.problem("no Action"))
	}
	for _, a := range s.actions {
		if strings.ContainsAny(a, "*?") {
			out = append(out, s.problem("wildcard action %q", a))
		}
	}
	if len(s.resources) == 0 && !s.principal {
		out = append(out, s.problem("no Resource"))
	}
	if slices.Contains(s.resources, "*") || s.notResource {
		var bad []string
		for _, a := range s.actions {
			if !isNoResourceLevel(a) {
				bad = append(bad, a)
			}
		}
		if len(bad) > 0 {
			out = append(out, s.problem(`Resource "*" for %s (only log delivery and X-Ray actions may have it)`, strings.Join(bad, ", ")))
		}
	}
	for _, a := range s.actions {
		if !isSensitive(a) || (strings.EqualFold(a, "execute-api:Invoke") && s.ipRestrictedInvoke()) {
			continue
		}
		for _, r := range s.resources {
			if r != "*" && broadResource(r) {
				out = append(out, s.problem("wildcard resource %q for %s", r, a))
			}
		}
	}
	return out
}

// lintTemplate lints every statement of the template.
func lintTemplate(t testing.TB, tmpl *cfncheck.Template) (n int, problems []string) {
	sts := statements(t, tmpl)
	for _, s := range sts {
		problems = append(problems, lintStatement(s)...)
	}
	return len(sts), problems
}

// TestIAMLint lints every statement of every addon template.
func TestIAMLint(t *testing.T) {
	for _, path := range addonTemplatePaths(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			tmpl := loadTemplate(t, path)
			tmpl.Path = rel(t, path)
			n, problems := lintTemplate(t, tmpl)
			require.Empty(t, problems)
			t.Logf("%d statements", n)
		})
	}
}

// TestIAMLintCatches runs the lint over testdata/iam-broken.yml, where
// each statement's Sid says what it breaks (Ok* statements break nothing).
func TestIAMLintCatches(t *testing.T) {
	tmpl := loadTemplate(t, filepath.Join("testdata", "iam-broken.yml"))
	want := map[string]string{
		"StarOnS3":            `Resource "*" for s3:GetObject`,
		"StarInList":          `Resource "*" for sqs:SendMessage`,
		"WildcardBucket":      `wildcard resource "arn:${AWS::Partition}:s3:::*" for s3:PutObject`,
		"WholeBucket":         `wildcard resource "arn:aws:s3:::bucket/*" for s3:GetObject`,
		"AnyStateMachine":     `wildcard resource "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:*"`,
		"AnyRegionSecret":     `wildcard resource "arn:aws:secretsmanager:*:*:secret:events!connection/*"`,
		"ServiceWildcard":     `wildcard action "s3:*"`,
		"AllActions":          `wildcard action "*"`,
		"PrefixWildcard":      `wildcard action "dynamodb:Get*"`,
		"NotActionStatement":  "NotAction allows every other action",
		"NotResourceStmt":     "NotResource allows every other resource",
		"PassAnyRole":         `Resource "*" for iam:PassRole`,
		"RunAnyTask":          `Resource "*" for ecs:RunTask`,
		"StarOnOtherAction":   `Resource "*" for events:PutRule`,
		"InvokeAnyLambda":     `wildcard resource "arn:aws:lambda:us-east-1:123456789012:function:*"`,
		"KmsAnyKey":           `wildcard resource "arn:aws:kms:us-east-1:123456789012:key/*"`,
		"OpenApi":             `wildcard resource "execute-api:/*" for execute-api:Invoke`,
		"LogDeliveryAndWrite": `Resource "*" for s3:PutObject`,
	}
	_, problems := lintTemplate(t, tmpl)
	got := map[string][]string{}
	for _, p := range problems {
		_, after, ok := strings.Cut(p, " statement ")
		require.True(t, ok, p)
		sid, msg, _ := strings.Cut(after, ": ")
		got[sid] = append(got[sid], msg)
	}
	for sid, msg := range want {
		require.Contains(t, got, sid, "the lint missed statement %s", sid)
		require.Condition(t, func() bool {
			return slices.ContainsFunc(got[sid], func(m string) bool { return strings.Contains(m, msg) })
		}, "statement %s: want %q among %q", sid, msg, got[sid])
	}
	for sid, msgs := range got {
		require.Contains(t, want, sid, "unexpected findings for %s: %q", sid, msgs)
	}
}

func TestBroadResource(t *testing.T) {
	for r, want := range map[string]bool{
		"*":                        true,
		"arn:aws:s3:::*":           true,
		"arn:aws:s3:::b/*":         true,
		"arn:aws:s3:::b*":          false, // the S3 rule requires the prefix anyway
		"arn:aws:s3:::${B}/${P}/*": false,
		"arn:aws:sqs:*:123:q":      true,
		"arn:aws:sqs:r:*:q":        true,
		"arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:task/${Cluster}/*":              false,
		"arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:task-definition/${App}-x:*":     false,
		"arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:*":              true,
		"arn:${AWS::Partition}:iam::${AWS::AccountId}:role/*":                                       true,
		"arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${App}-${Env}-${Name}-TaskRole-*":        false,
		"arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:${App}-${Env}-w:*": false,
		"${BenchlingConnection.Arn}": false,
		"execute-api:/*":             true,
		"arn:aws":                    true,
		"arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:rule/StepFunctionsGetEventsForEC": false,
	} {
		require.Equal(t, want, broadResource(r), r)
	}
}

// A rule checks the statements of one template; applied counts the
// statements it was about, so that a rule that matches nothing fails.
type rule func(tmpl *cfncheck.Template, sts []*statement) (applied int, problems []string)

// checkRule runs r over addons/workflows.yml, mutated first by mutate if
// it is not nil.
func checkRule(t *testing.T, r rule, mutate func(testing.TB, *cfncheck.Template)) (int, []string) {
	t.Helper()
	tmpl := loadTemplate(t, workflowsPath(t))
	tmpl.Path = rel(t, tmpl.Path)
	if mutate != nil {
		mutate(t, tmpl)
	}
	return r(tmpl, statements(t, tmpl))
}

// testRule checks that r holds for addons/workflows.yml and applies to at
// least one statement, and that each mutation breaks it with a problem
// containing the mutation's message.
func testRule(t *testing.T, r rule, mutations map[string]mutation) {
	t.Helper()
	n, problems := checkRule(t, r, nil)
	require.Empty(t, problems)
	require.Positive(t, n, "the rule applies to no statement")
	for name, m := range mutations {
		t.Run(name, func(t *testing.T) {
			_, problems := checkRule(t, r, m.apply)
			require.NotEmpty(t, problems, "the rule did not catch the breakage")
			require.Condition(t, func() bool {
				return slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, m.want) })
			}, "want a problem with %q, got %q", m.want, problems)
		})
	}
}

type mutation struct {
	apply func(testing.TB, *cfncheck.Template)
	want  string
}

// findStatement returns the statement with sid in resource id's policies.
func findStatement(t testing.TB, tmpl *cfncheck.Template, id, sid string) map[string]any {
	t.Helper()
	for _, s := range statements(t, tmpl) {
		if s.resource == id && s.sid == sid {
			return s.raw
		}
	}
	t.Fatalf("no statement %s in %s", sid, id)
	return nil
}

// set returns a mutation setting key of the statement to v.
func set(id, sid, key string, v any, want string) mutation {
	return mutation{want: want, apply: func(t testing.TB, tmpl *cfncheck.Template) {
		st := findStatement(t, tmpl, id, sid)
		if v == nil {
			delete(st, key)
			return
		}
		st[key] = v
	}}
}

func sub(s string) map[string]any { return map[string]any{"Fn::Sub": s} }

// forEach runs check on every statement that matches and returns how
// many matched and the problems.
func forEach(sts []*statement, match func(*statement) bool, check func(*statement) []string) (int, []string) {
	n := 0
	var problems []string
	for _, s := range sts {
		if match(s) {
			n++
			problems = append(problems, check(s)...)
		}
	}
	return n, problems
}

const partition = `arn:(\$\{AWS::Partition\}|aws)`

var (
	taskDefinitionFamily = regexp.MustCompile(`^` + partition + `:ecs:\$\{AWS::Region\}:\$\{AWS::AccountId\}:task-definition/\$\{App\}-\$\{Env\}-\$\{Name\}:(\*|\d+)$`)
	clusterARN           = regexp.MustCompile(`^` + partition + `:ecs:\$\{AWS::Region\}:\$\{AWS::AccountId\}:cluster/[^*?]+$`)
	taskRolePattern      = regexp.MustCompile(`^` + partition + `:iam::\$\{AWS::AccountId\}:role/\$\{App\}-\$\{Env\}-\$\{Name\}-TaskRole-\*$`)
	packagePrefix        = regexp.MustCompile(`^` + partition + `:s3:::\$\{BucketName\}/\$\{PackagePrefix\}/.+$`)
	packagerQueue        = regexp.MustCompile(`^` + partition + `:sqs:\$\{AWS::Region\}:\$\{AWS::AccountId\}:\$\{PackagerQueueName\}$`)
	bucketARN            = regexp.MustCompile(`^` + partition + `:s3:::\$\{BucketName\}$`)
	prefixCondition      = regexp.MustCompile(`^(\$\{PackagePrefix\}/|\.quilt/workflows/)`)
	// quiltWorkflows is the bucket's Quilt workflow config and the schemas
	// beside it, which job export reads (docs/deploy.md, "Quilt workflows").
	quiltWorkflows = regexp.MustCompile(`^` + partition + `:s3:::\$\{BucketName\}/\.quilt/workflows/\*$`)
)

// listsPrefixOnly reports whether s is the one S3 grant on the bucket itself
// that stays within the package prefix: s3:ListBucket alone, on the bucket
// ARN, with an s3:prefix condition under ${PackagePrefix}/ (without a
// listing, S3 answers a missing key with AccessDenied instead of NoSuchKey).
func (s *statement) listsPrefixOnly(r string) bool {
	if !bucketARN.MatchString(r) || len(s.actions) != 1 || !strings.EqualFold(s.actions[0], "s3:ListBucket") {
		return false
	}
	vals, ok := s.conditionValues("s3:prefix", "StringLike", "StringEquals")
	if !ok || len(vals) == 0 {
		return false
	}
	for _, v := range vals {
		if !prefixCondition.MatchString(v) {
			return false
		}
	}
	return true
}

// listsUploadsOnly reports whether s is the grant job reconcile needs to
// find abandoned multipart uploads: s3:ListBucketMultipartUploads alone,
// on the bucket ARN. It cannot be narrowed to the prefix (see
// ruleUploadsListing); it shows key names, never contents.
func (s *statement) listsUploadsOnly(r string) bool {
	return bucketARN.MatchString(r) && len(s.actions) == 1 && strings.EqualFold(s.actions[0], "s3:ListBucketMultipartUploads")
}

// ruleUploadsListing: a statement that allows s3:ListBucketMultipartUploads
// carries no s3:prefix condition. IAM sets that key for ListBucket and
// ListBucketVersions only, so on this action the condition never matches
// and S3 denies every listing (job reconcile would fail with exit 2).
func ruleUploadsListing(_ *cfncheck.Template, sts []*statement) (int, []string) {
	return forEach(sts, func(s *statement) bool { return s.allows("s3:ListBucketMultipartUploads") }, func(s *statement) []string {
		if _, ok := s.conditionValues("s3:prefix", "StringLike", "StringEquals"); ok {
			return []string{s.problem("an s3:prefix condition on s3:ListBucketMultipartUploads never matches: S3 denies every listing")}
		}
		return nil
	})
}

func TestIAMUploadsListing(t *testing.T) {
	testRule(t, ruleUploadsListing, map[string]mutation{
		"prefix condition": set("WorkerTaskPolicy", "ListPackageUploads", "Condition",
			map[string]any{"StringLike": map[string]any{"s3:prefix": sub("${PackagePrefix}/*")}}, "never matches"),
	})
}

// readsVersioningOnly reports whether s is the other S3 grant on the bucket
// itself: s3:GetBucketVersioning alone, on the bucket ARN (job export
// checks once whether a failed export can restore the previous one).
func (s *statement) readsVersioningOnly(r string) bool {
	return bucketARN.MatchString(r) && len(s.actions) == 1 && strings.EqualFold(s.actions[0], "s3:GetBucketVersioning")
}

// readsQuiltWorkflowsOnly reports whether s is job export's read of the
// bucket's Quilt workflow config and schemas: s3:GetObject alone, on
// ${BucketName}/.quilt/workflows/*.
func (s *statement) readsQuiltWorkflowsOnly(r string) bool {
	return quiltWorkflows.MatchString(r) && len(s.actions) == 1 && strings.EqualFold(s.actions[0], "s3:GetObject")
}

// onBucketOK reports whether s may name resource r, a bucket-level grant
// (or the read-only one of the workflow config).
func (s *statement) onBucketOK(r string) bool {
	return s.listsPrefixOnly(r) || s.listsUploadsOnly(r) || s.readsVersioningOnly(r) || s.readsQuiltWorkflowsOnly(r)
}

// tenantAPI is the only URL prefix the state machines' HTTP tasks may call.
const tenantAPI = "https://${BenchlingTenant}.benchling.com/api/v2/"

func ruleRunTask(_ *cfncheck.Template, sts []*statement) (int, []string) {
	return forEach(sts, func(s *statement) bool { return s.allows("ecs:RunTask") }, func(s *statement) []string {
		var out []string
		for _, r := range s.resources {
			if !taskDefinitionFamily.MatchString(r) {
				out = append(out, s.problem("ecs:RunTask on %q, not the worker's task definition family ${App}-${Env}-${Name}", r))
			}
		}
		vals, ok := s.conditionValues("ecs:cluster", "ArnEquals", "ArnLike", "StringEquals", "StringLike")
		if !ok || len(vals) == 0 {
			out = append(out, s.problem("ecs:RunTask without an ecs:cluster condition"))
		}
		for _, v := range vals {
			if !clusterARN.MatchString(v) {
				out = append(out, s.problem("ecs:cluster condition %q is not one cluster's ARN", v))
			}
		}
		return out
	})
}

func TestIAMRunTask(t *testing.T) {
	testRule(t, ruleRunTask, map[string]mutation{
		"any task definition": set("MachineBasePolicy", "RunWorkerTask", "Resource",
			sub("arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:task-definition/*"), "not the worker's task definition family"),
		"another family": set("MachineBasePolicy", "RunWorkerTask", "Resource",
			sub("arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:task-definition/${App}-${Env}-other:*"), "not the worker's task definition family"),
		"no cluster condition": set("MachineBasePolicy", "RunWorkerTask", "Condition", nil, "without an ecs:cluster condition"),
		"any cluster": set("MachineBasePolicy", "RunWorkerTask", "Condition",
			map[string]any{"ArnLike": map[string]any{"ecs:cluster": sub("arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:cluster/*")}},
			"is not one cluster's ARN"),
	})
}

func rulePassRole(tmpl *cfncheck.Template, sts []*statement) (int, []string) {
	_, hasParam := tmpl.Parameters["ExecutionRoleArn"]
	passes := map[string]bool{}
	n, problems := forEach(sts, func(s *statement) bool { return s.allows("iam:PassRole") }, func(s *statement) []string {
		var out []string
		for _, r := range s.resources {
			switch {
			case r == "${ExecutionRoleArn}" && hasParam:
				passes["execution"] = true
			case taskRolePattern.MatchString(r):
				passes["task"] = true
			default:
				out = append(out, s.problem("iam:PassRole on %q, not the worker's execution role (!Ref ExecutionRoleArn) or task role (${App}-${Env}-${Name}-TaskRole-*)", r))
			}
		}
		vals, ok := s.conditionValues("iam:PassedToService", "StringEquals")
		if !ok || !slices.Equal(vals, []string{"ecs-tasks.amazonaws.com"}) {
			out = append(out, s.problem("iam:PassRole without the condition StringEquals iam:PassedToService: ecs-tasks.amazonaws.com (got %q)", vals))
		}
		if len(s.actions) > 1 {
			out = append(out, s.problem("iam:PassRole shares its statement with %q", s.actions))
		}
		return out
	})
	if n > 0 && (!passes["execution"] || !passes["task"]) {
		problems = append(problems, fmt.Sprintf("%s: the state machines must pass both the worker's execution and task roles (got %v)", tmpl.Path, passes))
	}
	return n, problems
}

func TestIAMPassRole(t *testing.T) {
	testRule(t, rulePassRole, map[string]mutation{
		"any role": set("MachineBasePolicy", "PassWorkerRoles", "Resource", "*", "not the worker's execution role"),
		"every role of the stack": set("MachineBasePolicy", "PassWorkerRoles", "Resource",
			[]any{map[string]any{"Ref": "ExecutionRoleArn"}, sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${App}-${Env}-${Name}-*")},
			"not the worker's execution role"),
		"no service condition": set("MachineBasePolicy", "PassWorkerRoles", "Condition", nil, "without the condition StringEquals iam:PassedToService"),
		"to any service": set("MachineBasePolicy", "PassWorkerRoles", "Condition",
			map[string]any{"StringLike": map[string]any{"iam:PassedToService": "*"}}, "without the condition StringEquals iam:PassedToService"),
		"task role missing": set("MachineBasePolicy", "PassWorkerRoles", "Resource",
			[]any{map[string]any{"Ref": "ExecutionRoleArn"}}, "must pass both"),
	})
}

func ruleInvokeHTTPEndpoint(_ *cfncheck.Template, sts []*statement) (int, []string) {
	return forEach(sts, func(s *statement) bool { return s.allows("states:InvokeHTTPEndpoint") }, func(s *statement) []string {
		var out []string
		vals, ok := s.conditionValues("states:HTTPEndpoint", "StringLike", "StringEquals")
		if !ok || len(vals) == 0 {
			return []string{s.problem("states:InvokeHTTPEndpoint without a states:HTTPEndpoint condition")}
		}
		for _, v := range vals {
			if !strings.HasPrefix(v, tenantAPI) {
				out = append(out, s.problem("states:HTTPEndpoint %q is not under %s", v, tenantAPI))
			}
		}
		return out
	})
}

func TestIAMInvokeHTTPEndpoint(t *testing.T) {
	testRule(t, ruleInvokeHTTPEndpoint, map[string]mutation{
		"no condition": set("WebhookMachineRole", "CallBenchling", "Condition", nil, "without a states:HTTPEndpoint condition"),
		"any host": set("WebhookMachineRole", "CallBenchling", "Condition",
			map[string]any{"StringLike": map[string]any{"states:HTTPEndpoint": "https://*"}}, "is not under"),
		"any tenant": set("PackagingMachineRole", "CallBenchling", "Condition",
			map[string]any{"StringLike": map[string]any{"states:HTTPEndpoint": "https://*.benchling.com/api/v2/*"}}, "is not under"),
		"the tenant's other paths": set("PackagingMachineRole", "CallBenchling", "Condition",
			map[string]any{"StringLike": map[string]any{"states:HTTPEndpoint": []any{sub("https://${BenchlingTenant}.benchling.com/*")}}}, "is not under"),
		"only the method": set("WebhookMachineRole", "CallBenchling", "Condition",
			map[string]any{"StringEquals": map[string]any{"states:HTTPMethod": "GET"}}, "without a states:HTTPEndpoint condition"),
	})
}

// connections returns the logical IDs of the template's EventBridge
// connections.
func connections(tmpl *cfncheck.Template) []string {
	var ids []string
	for _, id := range tmpl.ResourceIDs() {
		if tmpl.Resources[id].Type == "AWS::Events::Connection" {
			ids = append(ids, id)
		}
	}
	return ids
}

func ruleConnection(tmpl *cfncheck.Template, sts []*statement) (int, []string) {
	conns := connections(tmpl)
	isAttr := func(r, attr string) bool {
		return slices.ContainsFunc(conns, func(id string) bool { return r == "${"+id+"."+attr+"}" })
	}
	n, problems := forEach(sts, func(s *statement) bool { return s.allows("events:RetrieveConnectionCredentials") }, func(s *statement) []string {
		var out []string
		for _, r := range s.resources {
			if !isAttr(r, "Arn") {
				out = append(out, s.problem("events:RetrieveConnectionCredentials on %q, not a connection's !GetAtt <Connection>.Arn", r))
			}
		}
		return out
	})
	m, more := forEach(sts, func(s *statement) bool { return s.allowsService("secretsmanager") }, func(s *statement) []string {
		var out []string
		for _, r := range s.resources {
			if !isAttr(r, "SecretArn") {
				out = append(out, s.problem("secretsmanager on %q, not a connection's !GetAtt <Connection>.SecretArn", r))
			}
		}
		return out
	})
	return n + m, append(problems, more...)
}

func TestIAMConnection(t *testing.T) {
	testRule(t, ruleConnection, map[string]mutation{
		"any connection": set("MachineBasePolicy", "BenchlingConnection", "Resource",
			sub("arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:connection/*"), "not a connection's !GetAtt <Connection>.Arn"),
		"by name": set("MachineBasePolicy", "BenchlingConnection", "Resource",
			sub("arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:connection/${App}-${Env}-${Name}-benchling/*"), "not a connection's !GetAtt <Connection>.Arn"),
		"the connection's secret ARN": set("MachineBasePolicy", "BenchlingConnection", "Resource",
			map[string]any{"Fn::GetAtt": []any{"BenchlingConnection", "SecretArn"}}, "not a connection's !GetAtt <Connection>.Arn"),
		"every connection secret": set("MachineBasePolicy", "BenchlingConnectionSecret", "Resource",
			sub("arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:events!connection/*"), "not a connection's !GetAtt <Connection>.SecretArn"),
	})
}

func ruleS3(_ *cfncheck.Template, sts []*statement) (int, []string) {
	return forEach(sts, func(s *statement) bool { return s.allowsService("s3") }, func(s *statement) []string {
		var out []string
		for _, r := range s.resources {
			if !packagePrefix.MatchString(r) && !s.onBucketOK(r) {
				out = append(out, s.problem("S3 on %q, not under arn:…:s3:::${BucketName}/${PackagePrefix}/", r))
			}
		}
		return out
	})
}

func TestIAMS3(t *testing.T) {
	testRule(t, ruleS3, map[string]mutation{
		"whole bucket": set("PackagingMachineRole", "WritePackageMetadata", "Resource",
			sub("arn:${AWS::Partition}:s3:::${BucketName}/*"), "not under"),
		"any bucket": set("WorkerTaskPolicy", "PackagePrefix", "Resource",
			sub("arn:${AWS::Partition}:s3:::*"), "not under"),
		"prefix without slash": set("WorkerTaskPolicy", "PackagePrefix", "Resource",
			sub("arn:${AWS::Partition}:s3:::${BucketName}/${PackagePrefix}*"), "not under"),
		"bucket ARN too": set("WorkerTaskPolicy", "PackagePrefix", "Resource",
			[]any{sub("arn:${AWS::Partition}:s3:::${BucketName}/${PackagePrefix}/*"), sub("arn:${AWS::Partition}:s3:::${BucketName}")}, "not under"),
		"listing the whole bucket": set("WorkerTaskPolicy", "ListPackagePrefix", "Condition",
			map[string]any{}, "not under"),
		"listing another prefix": set("WorkerTaskPolicy", "ListPackagePrefix", "Condition",
			map[string]any{"StringLike": map[string]any{"s3:prefix": "*"}}, "not under"),
		"more than listing on the bucket": set("WorkerTaskPolicy", "ListPackagePrefix", "Action",
			[]any{"s3:ListBucket", "s3:GetBucketPolicy"}, "not under"),
		"more than listing uploads on the bucket": set("WorkerTaskPolicy", "ListPackageUploads", "Action",
			[]any{"s3:ListBucketMultipartUploads", "s3:PutLifecycleConfiguration"}, "not under"),
		"listing uploads of any bucket": set("WorkerTaskPolicy", "ListPackageUploads", "Resource",
			sub("arn:${AWS::Partition}:s3:::*"), "not under"),
		"more than versioning on the bucket": set("WorkerTaskPolicy", "ReadBucketVersioning", "Action",
			[]any{"s3:GetBucketVersioning", "s3:PutBucketVersioning"}, "not under"),
		"writing the workflow config": set("WorkerTaskPolicy", "ReadQuiltWorkflows", "Action",
			[]any{"s3:GetObject", "s3:PutObject"}, "not under"),
		"reading all of .quilt": set("WorkerTaskPolicy", "ReadQuiltWorkflows", "Resource",
			sub("arn:${AWS::Partition}:s3:::${BucketName}/.quilt/*"), "not under"),
		"listing all of .quilt": set("WorkerTaskPolicy", "ListPackagePrefix", "Condition",
			map[string]any{"StringLike": map[string]any{"s3:prefix": []any{sub("${PackagePrefix}/*"), ".quilt/*"}}}, "not under"),
	})
}

func ruleSendMessage(_ *cfncheck.Template, sts []*statement) (int, []string) {
	return forEach(sts, func(s *statement) bool { return s.allowsService("sqs") }, func(s *statement) []string {
		var out []string
		for _, r := range s.resources {
			if !packagerQueue.MatchString(r) {
				out = append(out, s.problem("SQS on %q, not the packager queue arn:…:sqs:${AWS::Region}:${AWS::AccountId}:${PackagerQueueName}", r))
			}
		}
		return out
	})
}

func TestIAMSendMessage(t *testing.T) {
	testRule(t, ruleSendMessage, map[string]mutation{
		"any queue": set("PackagingMachineRole", "NotifyQuilt", "Resource",
			sub("arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:*"), "not the packager queue"),
		"star": set("PackagingMachineRole", "NotifyQuilt", "Resource", "*", "not the packager queue"),
		"another queue": set("PackagingMachineRole", "NotifyQuilt", "Resource",
			sub("arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:${App}-queue"), "not the packager queue"),
	})
}

// taskPolicies returns the managed policies that are outputs: Copilot
// attaches those to the worker's task role.
func taskPolicies(tmpl *cfncheck.Template) []string {
	var ids []string
	for _, name := range sortedKeys(tmpl.Outputs) {
		ref, _ := asMap(tmpl.Outputs[name]["Value"])["Ref"].(string)
		if r, ok := tmpl.Resources[ref]; ok && r.Type == "AWS::IAM::ManagedPolicy" {
			ids = append(ids, ref)
		}
	}
	return ids
}

func ruleTaskPolicy(tmpl *cfncheck.Template, sts []*statement) (int, []string) {
	ids := taskPolicies(tmpl)
	if len(ids) == 0 {
		return 1, []string{tmpl.Path + ": no AWS::IAM::ManagedPolicy output: Copilot attaches nothing to the task role"}
	}
	s3 := 0
	n, problems := forEach(sts, func(s *statement) bool { return slices.Contains(ids, s.resource) }, func(s *statement) []string {
		var out []string
		if s.allowsService("s3") {
			s3++
		}
		for _, r := range s.resources {
			if r == "*" || broadResource(r) {
				out = append(out, s.problem("the task role gets %q", r))
			}
			if s.allowsService("s3") && !packagePrefix.MatchString(r) && !s.onBucketOK(r) {
				out = append(out, s.problem("the task role gets S3 on %q, not only the package prefix", r))
			}
		}
		return out
	})
	if s3 == 0 {
		problems = append(problems, fmt.Sprintf("%s: the task policy %v grants no S3 on the package prefix (job export writes there)", tmpl.Path, ids))
	}
	return n, problems
}

func TestIAMTaskPolicy(t *testing.T) {
	testRule(t, ruleTaskPolicy, map[string]mutation{
		"whole bucket": set("WorkerTaskPolicy", "PackagePrefix", "Resource",
			sub("arn:${AWS::Partition}:s3:::${BucketName}/*"), "not only the package prefix"),
		"another prefix": set("WorkerTaskPolicy", "PackagePrefix", "Resource",
			sub("arn:${AWS::Partition}:s3:::${BucketName}/other/*"), "not only the package prefix"),
		"uploads and more on the bucket": set("WorkerTaskPolicy", "ListPackageUploads", "Action",
			[]any{"s3:ListBucketMultipartUploads", "s3:DeleteBucket"}, "not only the package prefix"),
		"not an output": {want: "no AWS::IAM::ManagedPolicy output", apply: func(_ testing.TB, tmpl *cfncheck.Template) {
			delete(tmpl.Outputs, "WorkerTaskPolicyArn")
		}},
	})
}
