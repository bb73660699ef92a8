package emulate

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"benchling-webhook/internal/testkit/testenv"
)

func decodeUseNumber(t *testing.T, s string) any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	require.NoError(t, dec.Decode(&v))
	return v
}

// ec2Event is the example event of the EventBridge documentation's
// "Amazon EventBridge event patterns" page.
const ec2Event = `{
  "version": "0",
  "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
  "detail-type": "EC2 Instance State-change Notification",
  "source": "aws.ec2",
  "account": "111122223333",
  "time": "2017-12-22T18:43:48Z",
  "region": "us-west-1",
  "resources": ["arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0"],
  "detail": {"instance-id": "i-1234567890abcdef0", "state": "terminated", "c-count": 5, "flag": true, "none": null}
}`

// quiltEvent is Quilt's example package-revision event
// (docs/advanced-features/package-events.md).
const quiltEvent = `{
  "version": "0", "id": "6425eb6a-9627-e6a1-2ae8-9d2d8883dc74", "detail-type": "package-revision",
  "source": "com.quiltdata", "account": "012345678901", "time": "2024-04-25T14:46:51Z", "region": "us-east-1",
  "resources": [],
  "detail": {"version": "0.1", "type": "created", "bucket": "example", "handle": "some/package",
    "topHash": "a0fddace2eb2fd91faa697d237a5dbdcfa77f0fd38ca8b4c850dbd93d142ee69"}
}`

func TestMatchPattern(t *testing.T) {
	for name, tc := range map[string]struct {
		pattern, event string
		want           bool
	}{
		// The documentation's examples (eb-event-patterns.html,
		// eb-create-pattern-operators.html, content filtering).
		"exact: source, detail-type and a nested field": {
			`{"source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"], "detail": {"state": ["terminated"]}}`, ec2Event, true},
		"exact: any of the listed values":                                {`{"detail": {"state": ["running", "terminated"]}}`, ec2Event, true},
		"exact: none of the listed values":                               {`{"detail": {"state": ["initializing", "running"]}}`, ec2Event, false},
		"exact is case-sensitive":                                        {`{"detail": {"state": ["Terminated"]}}`, ec2Event, false},
		"prefix on time (the docs' 2017-10-02 example, here 2017-12-22)": {`{"time": [{"prefix": "2017-12-22"}]}`, ec2Event, true},
		"prefix that does not match":                                     {`{"time": [{"prefix": "2017-10-02"}]}`, ec2Event, false},
		"prefix and an exact value, any-of":                              {`{"source": [{"prefix": "aws.s3"}, "aws.ec2"]}`, ec2Event, true},
		"an event array: any element matches":                            {`{"resources": ["arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0", "arn:x"]}`, ec2Event, true},
		"an event array: none matches":                                   {`{"resources": ["arn:x"]}`, ec2Event, false},
		"an empty event array matches nothing":                           {`{"resources": [""]}`, quiltEvent, false},
		"a field not in the event":                                       {`{"detail": {"missing": ["x"]}}`, ec2Event, false},
		"a number":                                                       {`{"detail": {"c-count": [5.0]}}`, ec2Event, true},
		"a number is not its string":                                     {`{"detail": {"c-count": ["5"]}}`, ec2Event, false},
		"true":                                                           {`{"detail": {"flag": [true]}}`, ec2Event, true},
		"null matches null":                                              {`{"detail": {"none": [null]}}`, ec2Event, true},
		"null does not match a missing field":                            {`{"detail": {"absent": [null]}}`, ec2Event, false},
		"an object pattern on a string field":                            {`{"source": {"x": ["y"]}}`, ec2Event, false},
		"prefix on a number":                                             {`{"detail": {"c-count": [{"prefix": "5"}]}}`, ec2Event, false},
		// Quilt's documented rule (package-events.md).
		"Quilt's rule": {`{"source": ["com.quiltdata"], "detail-type": ["package-revision"],
			"detail": {"type": ["created"], "handle": [{"prefix": "some/"}], "bucket": ["example"]}}`, quiltEvent, true},
		"Quilt's rule, another bucket":                        {`{"source": ["com.quiltdata"], "detail": {"bucket": ["other"]}}`, quiltEvent, false},
		"Quilt's rule, an empty prefix matches every package": {`{"detail": {"handle": [{"prefix": ""}]}}`, quiltEvent, true},
	} {
		t.Run(name, func(t *testing.T) {
			p := decodeUseNumber(t, tc.pattern)
			require.NoError(t, CheckPattern(p))
			assert.Equal(t, tc.want, MatchPattern(p.(map[string]any), decodeUseNumber(t, tc.event)))
		})
	}
}

func TestCheckPatternRefusesWhatItCannotMatch(t *testing.T) {
	for name, pattern := range map[string]string{
		"anything-but":       `{"detail": {"state": [{"anything-but": "initializing"}]}}`,
		"numeric":            `{"detail": {"c-count": [{"numeric": [">", 0]}]}}`,
		"exists":             `{"detail": {"state": [{"exists": true}]}}`,
		"suffix":             `{"detail": {"state": [{"suffix": ".png"}]}}`,
		"wildcard":           `{"detail": {"state": [{"wildcard": "*.png"}]}}`,
		"equals-ignore-case": `{"detail": {"state": [{"equals-ignore-case": "x"}]}}`,
		"prefix ignore case": `{"detail": {"state": [{"prefix": {"equals-ignore-case": "x"}}]}}`,
		"$or":                `{"$or": [{"source": ["a"]}, {"source": ["b"]}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			assert.ErrorIs(t, CheckPattern(decodeUseNumber(t, pattern)), ErrPatternNotImplemented)
		})
	}
	for name, pattern := range map[string]string{
		"empty":          `{}`,
		"a scalar value": `{"source": "aws.ec2"}`,
		"an empty array": `{"source": []}`,
		"nested arrays":  `{"source": [["a"]]}`,
	} {
		t.Run(name, func(t *testing.T) {
			err := CheckPattern(decodeUseNumber(t, pattern))
			require.Error(t, err)
			assert.NotErrorIs(t, err, ErrPatternNotImplemented, "invalid in EventBridge too")
		})
	}
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := testenv.RepoRoot()
	require.NoError(t, err)
	return root
}

func TestLoadRules(t *testing.T) {
	rules, machines, err := LoadRules(filepath.Join(repoRoot(t), "internal/testkit/emulate/testdata/bus/rules.yml"),
		map[string]string{"App": "a", "Env": "e", "Name": "n", "BucketName": "quilt-b", "PackagePrefix": "benchling"})
	require.NoError(t, err)
	require.Len(t, rules, 2, "the disabled rule is not loaded")
	assert.Equal(t, map[string]string{"echo": "internal/testkit/emulate/testdata/bus/echo.asl.json"}, machines)
	byName := map[string]Rule{}
	for _, r := range rules {
		byName[r.Name] = r
	}
	pr := byName["PackageRevisionRule"]
	assert.Equal(t, []any{"quilt-b"}, pr.Pattern["detail"].(map[string]any)["bucket"], "!Ref BucketName")
	assert.Equal(t, []any{map[string]any{"prefix": "benchling/"}}, pr.Pattern["detail"].(map[string]any)["handle"], "!Sub")
	assert.Equal(t, []RuleTarget{{ID: "Echo", Machine: "echo"}}, pr.Targets)
	assert.Equal(t, []RuleTarget{{ID: "EchoDetail", Machine: "echo", InputPath: "$.detail"}}, byName["DetailOnlyRule"].Targets)
}

func TestLoadRulesFailsLoudly(t *testing.T) {
	base, err := os.ReadFile(filepath.Join(repoRoot(t), "internal/testkit/emulate/testdata/bus/rules.yml"))
	require.NoError(t, err)
	params := map[string]string{"App": "a", "Env": "e", "Name": "n", "BucketName": "quilt-b", "PackagePrefix": "benchling"}
	for name, edit := range map[string][2]string{
		"an operator":                  {"handle: [{prefix: !Sub '${PackagePrefix}/'}]", "handle: [{suffix: x}]"},
		"an InputTransformer":          {"InputPath: $.detail", "InputTransformer: {InputTemplate: x}"},
		"another bus":                  {"  DetailOnlyRule:\n    Type: AWS::Events::Rule\n    Properties:\n", "  DetailOnlyRule:\n    Type: AWS::Events::Rule\n    Properties:\n      EventBusName: custom\n"},
		"a target not a state machine": {"Arn: !GetAtt EchoStateMachine.Arn", "Arn: !GetAtt EchoRole.Arn"},
		"a parameter without a value":  {"bucket: [!Ref BucketName]", "bucket: [!Ref Unknown]"},
	} {
		t.Run(name, func(t *testing.T) {
			tmpl := strings.Replace(string(base), edit[0], edit[1], 1)
			require.NotEqual(t, string(base), tmpl, "the edit applies")
			path := filepath.Join(t.TempDir(), "rules.yml")
			require.NoError(t, os.WriteFile(path, []byte(tmpl), 0o644))
			_, _, err := LoadRules(path, params)
			assert.Error(t, err)
		})
	}
}

// TestAddonRulesLoad keeps the deployed addon loadable by the local bus:
// every rule it has (the canvas machine's PackageRevisionRule, once it is
// there) uses only what the bus emulates.
func TestAddonRulesLoad(t *testing.T) {
	_, _, err := LoadRules(filepath.Join(repoRoot(t), "addons/workflows.yml"),
		map[string]string{"App": "a", "Env": "e", "Name": "n", "BucketName": "quilt-b", "PackagePrefix": "benchling", "CatalogHost": "c"})
	require.NoError(t, err)
}

// TestEventBusStartsTargets runs the bus in a real stack: Quilt's event
// starts the rule's machine with the whole event as its input; an event
// no rule matches starts nothing; InputPath selects part of it.
func TestEventBusStartsTargets(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the local stack")
	}
	root := repoRoot(t)
	_, _, err := NodeTools(root)
	testenv.Need(t, testenv.EnvRequireS3, err)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := Start(ctx, Options{Dir: t.TempDir(), JobBinary: "/nonexistent/job", RepoRoot: root, Bucket: "quilt-b",
		EventRules: filepath.Join(root, "internal/testkit/emulate/testdata/bus/rules.yml")})
	if errors.Is(err, testenv.ErrMissing) {
		testenv.Need(t, testenv.EnvRequireS3, err)
	}
	require.NoError(t, err)
	defer st.Close()

	event := strings.NewReplacer(`"example"`, `"quilt-b"`, `"some/package"`, `"benchling/etr_1"`).Replace(quiltEvent)
	require.NoError(t, st.PutEvent(ctx, []byte(event)))
	other := strings.NewReplacer(`"example"`, `"quilt-b"`, `"some/package"`, `"other/etr_1"`).Replace(quiltEvent)
	require.NoError(t, st.PutEvent(ctx, []byte(other)))
	require.NoError(t, st.PutEvent(ctx, []byte(`{"source":"aws.ec2","detail":{}}`)))
	require.Error(t, st.PutEvent(ctx, []byte(`[1]`)))

	evs := st.BusEvents()
	require.Len(t, evs, 3)
	require.Len(t, evs[0].Deliveries, 1)
	d := evs[0].Deliveries[0]
	require.NoError(t, d.Err)
	assert.Equal(t, "PackageRevisionRule", d.Rule)
	ex, err := st.Wait(ctx, d.ExecutionArn)
	require.NoError(t, err)
	assert.Equal(t, "SUCCEEDED", ex.Status, ex.Cause)
	assert.Equal(t, "echo", ex.Machine)
	assert.JSONEq(t, event, string(ex.Output), "the whole event is the input")

	require.Len(t, evs[1].Deliveries, 1, "only DetailOnlyRule matches other/…")
	ex, err = st.Wait(ctx, evs[1].Deliveries[0].ExecutionArn)
	require.NoError(t, err)
	var out map[string]any
	require.NoError(t, json.Unmarshal(ex.Output, &out))
	assert.Equal(t, "other/etr_1", out["handle"], "InputPath $.detail")
	assert.Empty(t, evs[2].Deliveries)
}
