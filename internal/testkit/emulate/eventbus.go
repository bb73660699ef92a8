package emulate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"benchling-webhook/internal/deploytest/cfncheck"
)

// The local EventBridge default bus: the addon's AWS::Events::Rule
// resources, their event patterns and their Step Functions targets.
// Design: docs/testkit.md#the-local-event-bus.

// Rule is one AWS::Events::Rule as the local bus runs it.
type Rule struct {
	// Name is the rule's logical id in the template.
	Name string
	// Pattern is the EventPattern, intrinsics resolved, checked by [CheckPattern].
	Pattern map[string]any
	// Targets are the state machines the rule starts.
	Targets []RuleTarget
}

// RuleTarget is one target of a rule: a state machine of the stack.
type RuleTarget struct {
	// ID is the target's Id.
	ID string
	// Machine is the emulated machine's name (its definition file's base
	// name, e.g. "canvas" for statemachine/canvas.asl.json).
	Machine string
	// Input is the target's constant Input (JSON), if set.
	Input json.RawMessage
	// InputPath is the target's InputPath, if set.
	InputPath string
}

// BusEvent is one event put on the local bus and what it started.
type BusEvent struct {
	Event      json.RawMessage
	Time       time.Time
	Deliveries []Delivery
}

// Revision returns the package handle and top hash of a Quilt
// package-revision event (ok false for any other event).
func (e BusEvent) Revision() (handle, topHash string, ok bool) {
	var ev struct {
		Source     string `json:"source"`
		DetailType string `json:"detail-type"`
		Detail     struct {
			Handle  string `json:"handle"`
			TopHash string `json:"topHash"`
		} `json:"detail"`
	}
	if json.Unmarshal(e.Event, &ev) != nil || ev.Source != "com.quiltdata" || ev.DetailType != "package-revision" {
		return "", "", false
	}
	return ev.Detail.Handle, ev.Detail.TopHash, true
}

// Delivery is one target an event matched.
type Delivery struct {
	Rule, Target, Machine string
	// ExecutionArn is the execution started ("" if it could not start).
	ExecutionArn string
	Err          error
}

// Rules returns the rules of the local bus.
func (s *Stack) Rules() []Rule { return append([]Rule(nil), s.rules...) }

// BusEvents returns the events put on the local bus so far, in order.
func (s *Stack) BusEvents() []BusEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]BusEvent(nil), s.busEvents...)
}

// PutEvent puts one whole EventBridge event (envelope included) on the
// local default bus: every rule whose pattern matches starts its targets,
// each with the whole event as input (or the target's Input or
// InputPath), as EventBridge's Step Functions targets do. It returns an
// error only for an event that is not a JSON object; a target that fails
// to start is recorded in [Stack.BusEvents].
func (s *Stack) PutEvent(ctx context.Context, event []byte) error {
	dec := json.NewDecoder(bytes.NewReader(event))
	dec.UseNumber()
	var ev any
	if err := dec.Decode(&ev); err != nil {
		return fmt.Errorf("emulate: event bus: %w", err)
	}
	if _, ok := ev.(map[string]any); !ok {
		return errors.New("emulate: event bus: the event is not a JSON object")
	}
	be := BusEvent{Event: append(json.RawMessage(nil), event...), Time: time.Now().UTC()}
	for _, r := range s.rules {
		if !MatchPattern(r.Pattern, ev) {
			continue
		}
		for _, t := range r.Targets {
			d := Delivery{Rule: r.Name, Target: t.ID, Machine: t.Machine}
			input, err := t.input(event, ev)
			if err == nil {
				d.ExecutionArn, err = s.startExecution(ctx, t.Machine, "", input, "")
			}
			d.Err = err
			s.logf("event bus: %s -> %s (%s): %s %v", r.Name, t.Machine, t.ID, shortArn(d.ExecutionArn), err)
			be.Deliveries = append(be.Deliveries, d)
		}
	}
	s.mu.Lock()
	s.busEvents = append(s.busEvents, be)
	s.mu.Unlock()
	return nil
}

// input is what the target's execution gets.
func (t RuleTarget) input(raw []byte, ev any) (json.RawMessage, error) {
	switch {
	case t.Input != nil:
		return t.Input, nil
	case t.InputPath != "":
		v, ok := selectPath(ev, t.InputPath)
		if !ok {
			return nil, fmt.Errorf("emulate: event bus: InputPath %s selects nothing", t.InputPath)
		}
		return json.Marshal(v)
	}
	return raw, nil
}

var simplePath = regexp.MustCompile(`^\$(\.[A-Za-z0-9_-]+)*$`)

// selectPath applies a JSONPath of dotted names ($, $.detail, $.detail.x).
func selectPath(v any, path string) (any, bool) {
	for _, name := range strings.Split(path, ".")[1:] {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[name]; !ok {
			return nil, false
		}
	}
	return v, true
}

// MatchPattern reports whether event matches an EventBridge event pattern
// checked by [CheckPattern]: every field of the pattern must be in the
// event; an object matches the event's object field by field; an array
// lists alternatives (any one matching is enough), each an exact value
// (string, number, true, false, null) or {"prefix": "..."}; where the
// event's value is an array, any of its elements may match
// (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns.html,
// .../eb-create-pattern-operators.html).
func MatchPattern(pattern map[string]any, event any) bool {
	ev, ok := event.(map[string]any)
	if !ok {
		return false
	}
	for k, p := range pattern {
		v, present := ev[k]
		if !present {
			return false
		}
		switch p := p.(type) {
		case map[string]any:
			if !MatchPattern(p, v) {
				return false
			}
		case []any:
			if !matchLeaf(p, v) {
				return false
			}
		default:
			return false
		}
	}
	return true
}

func matchLeaf(alternatives []any, v any) bool {
	values := []any{v}
	if arr, ok := v.([]any); ok {
		values = arr
	}
	for _, alt := range alternatives {
		for _, x := range values {
			if matchValue(alt, x) {
				return true
			}
		}
	}
	return false
}

func matchValue(alt, v any) bool {
	switch a := alt.(type) {
	case map[string]any:
		prefix, _ := a["prefix"].(string)
		s, ok := v.(string)
		return ok && strings.HasPrefix(s, prefix)
	case json.Number, float64, int, int64:
		fa, okA := number(a)
		fv, okV := number(v)
		return okA && okV && fa == fv
	case string:
		s, ok := v.(string)
		return ok && s == a
	case bool:
		b, ok := v.(bool)
		return ok && b == a
	case nil:
		return v == nil
	}
	return false
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case json.Number:
		f, err := strconv.ParseFloat(string(n), 64)
		return f, err == nil
	case float64:
		return n, true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	}
	return 0, false
}

// ErrPatternNotImplemented is returned by [CheckPattern] for an event
// pattern operator the local bus does not implement.
var ErrPatternNotImplemented = errors.New("emulate: event pattern operator not implemented by the local bus")

// CheckPattern checks an event pattern as EventBridge would (a non-empty
// object whose leaves are non-empty arrays) and fails with
// [ErrPatternNotImplemented] on any operator but prefix (anything-but,
// numeric, exists, suffix, wildcard, cidr, equals-ignore-case, $or, …),
// so a rule the local bus would misread fails loudly instead of matching
// differently.
func CheckPattern(pattern any) error { return checkPattern("", pattern) }

func checkPattern(path string, p any) error {
	m, ok := p.(map[string]any)
	if !ok || len(m) == 0 {
		return fmt.Errorf("emulate: event pattern%s: must be a non-empty object", at(path))
	}
	for k, v := range m {
		sub := path + "." + k
		if strings.HasPrefix(k, "$") {
			return fmt.Errorf("%w: %s%s", ErrPatternNotImplemented, k, at(path))
		}
		switch v := v.(type) {
		case map[string]any:
			if err := checkPattern(sub, v); err != nil {
				return err
			}
		case []any:
			if len(v) == 0 {
				return fmt.Errorf("emulate: event pattern%s: empty array", at(sub))
			}
			for _, alt := range v {
				switch a := alt.(type) {
				case string, json.Number, float64, int, int64, bool, nil:
				case map[string]any:
					if len(a) != 1 {
						return fmt.Errorf("%w: %v%s", ErrPatternNotImplemented, keys(a), at(sub))
					}
					if _, ok := a["prefix"].(string); !ok {
						return fmt.Errorf("%w: %v%s", ErrPatternNotImplemented, keys(a), at(sub))
					}
				default:
					return fmt.Errorf("emulate: event pattern%s: %T in an array", at(sub), alt)
				}
			}
		default:
			return fmt.Errorf("emulate: event pattern%s: a value must be an array or an object", at(sub))
		}
	}
	return nil
}

func at(path string) string {
	if path == "" {
		return ""
	}
	return " at " + strings.TrimPrefix(path, ".")
}

func keys(m map[string]any) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// ---- loading the rules from the addon

// LoadRules reads the AWS::Events::Rule resources of a CloudFormation
// template (the addon, addons/workflows.yml), resolving Ref, Fn::Sub,
// Fn::GetAtt and Fn::Join with params (parameter name -> local value;
// AWS::Region, AWS::AccountId, AWS::Partition and AWS::URLSuffix are the
// emulated account's). Each target must be a state machine of the template
// (Ref or Fn::GetAtt .Arn), named by its DefinitionS3Location's base name;
// machines maps those names to their definition paths as written (relative
// to the repository root, as Copilot resolves them). Anything the local
// bus would run differently fails: another bus, a Condition, a disabled
// rule is skipped (not an error), an InputTransformer, a pattern operator
// other than prefix.
func LoadRules(templatePath string, params map[string]string) (rules []Rule, machines map[string]string, err error) {
	t, err := cfncheck.Load(templatePath)
	if err != nil {
		return nil, nil, fmt.Errorf("emulate: event bus: %w", err)
	}
	r := resolver{t: t, params: params}
	machines = map[string]string{}
	for _, id := range t.ResourceIDs() {
		res := t.Resources[id]
		if res.Type != "AWS::Events::Rule" {
			continue
		}
		fail := func(format string, args ...any) error {
			return fmt.Errorf("emulate: event bus: %s: rule %s: %s", templatePath, id, fmt.Sprintf(format, args...))
		}
		if res.Condition != "" {
			return nil, nil, fail("a Condition (%s) is not evaluated locally", res.Condition)
		}
		// Only the fields the bus uses are resolved: RoleArn, RetryPolicy and
		// the like may name resources that have no local value.
		pm := map[string]any{}
		for _, k := range []string{"EventBusName", "State", "ScheduleExpression", "EventPattern"} {
			if v, ok := res.Properties[k]; ok {
				if pm[k], err = r.resolve(v); err != nil {
					return nil, nil, fail("%s: %v", k, err)
				}
			}
		}
		if bus, ok := pm["EventBusName"]; ok && bus != "default" {
			return nil, nil, fail("EventBusName %v: only the default bus is emulated", bus)
		}
		if state, ok := pm["State"]; ok && state != "ENABLED" {
			continue
		}
		if _, ok := pm["ScheduleExpression"]; ok {
			return nil, nil, fail("ScheduleExpression is not emulated")
		}
		pattern := pm["EventPattern"]
		if s, ok := pattern.(string); ok {
			dec := json.NewDecoder(strings.NewReader(s))
			dec.UseNumber()
			if err := dec.Decode(&pattern); err != nil {
				return nil, nil, fail("EventPattern: %v", err)
			}
		}
		pattern = normalizeNumbers(pattern)
		if err := CheckPattern(pattern); err != nil {
			return nil, nil, fail("%v", err)
		}
		rule := Rule{Name: id, Pattern: pattern.(map[string]any)}
		targets, _ := res.Properties["Targets"].([]any)
		if len(targets) == 0 {
			return nil, nil, fail("no Targets")
		}
		for _, tv := range targets {
			tm, _ := tv.(map[string]any)
			target := RuleTarget{}
			target.ID, _ = tm["Id"].(string)
			for k, v := range tm {
				switch k {
				case "Id", "Arn", "RoleArn", "RetryPolicy", "DeadLetterConfig":
				case "Input":
					v, err := r.resolve(v)
					if err != nil {
						return nil, nil, fail("target %s: Input: %v", target.ID, err)
					}
					s, _ := v.(string)
					if !json.Valid([]byte(s)) {
						return nil, nil, fail("target %s: Input is not JSON text", target.ID)
					}
					target.Input = json.RawMessage(s)
				case "InputPath":
					s, _ := v.(string)
					if !simplePath.MatchString(s) {
						return nil, nil, fail("target %s: InputPath %q: only $ and dotted names are emulated", target.ID, s)
					}
					target.InputPath = s
				default:
					return nil, nil, fail("target %s: %s is not emulated", target.ID, k)
				}
			}
			arn, err := r.resolve(tm["Arn"])
			if err != nil {
				return nil, nil, fail("target %s: Arn: %v", target.ID, err)
			}
			machineID, ok := r.stateMachineOf(arn)
			if !ok {
				return nil, nil, fail("target %s: Arn %v is not a state machine of the template", target.ID, tm["Arn"])
			}
			loc, _ := t.Resources[machineID].Properties["DefinitionS3Location"].(string)
			if loc == "" {
				return nil, nil, fail("target %s: state machine %s has no local DefinitionS3Location", target.ID, machineID)
			}
			target.Machine = strings.TrimSuffix(strings.TrimSuffix(filepath.Base(loc), ".json"), ".asl")
			machines[target.Machine] = loc
			rule.Targets = append(rule.Targets, target)
		}
		rules = append(rules, rule)
	}
	return rules, machines, nil
}

// normalizeNumbers turns the template's numbers (int64, float64) into
// json.Number, as events are decoded.
func normalizeNumbers(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			t[k] = normalizeNumbers(x)
		}
	case []any:
		for i, x := range t {
			t[i] = normalizeNumbers(x)
		}
	case int64:
		return json.Number(strconv.FormatInt(t, 10))
	case float64:
		return json.Number(strconv.FormatFloat(t, 'g', -1, 64))
	}
	return v
}

// resolver evaluates the intrinsic functions a rule may use.
type resolver struct {
	t      *cfncheck.Template
	params map[string]string
}

// machineRef marks a resolved Ref/GetAtt of a state machine resource.
type machineRef struct{ id string }

func (r resolver) pseudo(name string) (string, bool) {
	switch name {
	case "AWS::Region":
		return Region, true
	case "AWS::AccountId":
		return AccountID, true
	case "AWS::Partition":
		return "aws", true
	case "AWS::URLSuffix":
		return "amazonaws.com", true
	}
	v, ok := r.params[name]
	return v, ok
}

func (r resolver) ref(name string) (any, error) {
	if v, ok := r.pseudo(name); ok {
		return v, nil
	}
	if res, ok := r.t.Resources[name]; ok && res.Type == "AWS::StepFunctions::StateMachine" {
		return machineRef{name}, nil
	}
	return nil, fmt.Errorf("no local value for Ref %s", name)
}

func (r resolver) resolve(v any) (any, error) {
	switch t := v.(type) {
	case map[string]any:
		if len(t) == 1 {
			for k, arg := range t {
				switch k {
				case "Ref":
					name, _ := arg.(string)
					return r.ref(name)
				case "Fn::GetAtt":
					parts, _ := arg.([]any)
					if len(parts) == 2 && parts[1] == "Arn" {
						if id, _ := parts[0].(string); id != "" {
							if res, ok := r.t.Resources[id]; ok && res.Type == "AWS::StepFunctions::StateMachine" {
								return machineRef{id}, nil
							}
						}
					}
					return nil, fmt.Errorf("Fn::GetAtt %v: no local value", arg)
				case "Fn::Sub":
					return r.sub(arg)
				case "Fn::Join":
					return r.join(arg)
				}
				if strings.HasPrefix(k, "Fn::") {
					return nil, fmt.Errorf("%s is not evaluated locally", k)
				}
			}
		}
		out := make(map[string]any, len(t))
		for k, x := range t {
			y, err := r.resolve(x)
			if err != nil {
				return nil, err
			}
			out[k] = y
		}
		return out, nil
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			y, err := r.resolve(x)
			if err != nil {
				return nil, err
			}
			out[i] = y
		}
		return out, nil
	}
	return v, nil
}

var subVar = regexp.MustCompile(`\$\{([^}!][^}]*)\}`)

func (r resolver) sub(arg any) (any, error) {
	var tmpl string
	vars := map[string]any{}
	switch a := arg.(type) {
	case string:
		tmpl = a
	case []any:
		if len(a) != 2 {
			return nil, errors.New("Fn::Sub: want [template, variables]")
		}
		tmpl, _ = a[0].(string)
		m, _ := a[1].(map[string]any)
		for k, x := range m {
			y, err := r.resolve(x)
			if err != nil {
				return nil, err
			}
			vars[k] = y
		}
	default:
		return nil, errors.New("Fn::Sub: want a string or a list")
	}
	var err error
	out := subVar.ReplaceAllStringFunc(tmpl, func(m string) string {
		name := m[2 : len(m)-1]
		if v, ok := vars[name]; ok {
			if s, ok := v.(string); ok {
				return s
			}
		}
		if strings.Contains(name, ".") { // ${Resource.Attr}
			parts := strings.SplitN(name, ".", 2)
			v, e := r.resolve(map[string]any{"Fn::GetAtt": []any{parts[0], parts[1]}})
			if e == nil {
				if mr, ok := v.(machineRef); ok {
					return "${machine:" + mr.id + "}"
				}
			}
			err = fmt.Errorf("Fn::Sub ${%s}: no local value", name)
			return m
		}
		v, e := r.ref(name)
		if s, ok := v.(string); ok && e == nil {
			return s
		}
		err = fmt.Errorf("Fn::Sub ${%s}: no local value", name)
		return m
	})
	out = strings.ReplaceAll(out, "${!", "${")
	return out, err
}

func (r resolver) join(arg any) (any, error) {
	a, _ := arg.([]any)
	if len(a) != 2 {
		return nil, errors.New("Fn::Join: want [delimiter, list]")
	}
	delim, _ := a[0].(string)
	list, err := r.resolve(a[1])
	if err != nil {
		return nil, err
	}
	items, _ := list.([]any)
	strs := make([]string, len(items))
	for i, x := range items {
		s, ok := x.(string)
		if !ok {
			return nil, fmt.Errorf("Fn::Join: %v is not a string", x)
		}
		strs[i] = s
	}
	return strings.Join(strs, delim), nil
}

// stateMachineOf returns the logical id of the state machine a target's
// resolved Arn names.
func (r resolver) stateMachineOf(arn any) (string, bool) {
	switch a := arn.(type) {
	case machineRef:
		return a.id, true
	case string:
		if strings.HasPrefix(a, "${machine:") && strings.HasSuffix(a, "}") {
			return a[len("${machine:") : len(a)-1], true
		}
	}
	return "", false
}
