package cfncheck

import (
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Problem is one thing wrong with a template.
type Problem struct {
	// Path locates the value, e.g.
	// Resources.MachineRole.Properties.Policies[0].PolicyDocumentt.
	Path string
	// Line is the 1-based source line (0 if unknown).
	Line int
	// Message says what is wrong.
	Message string
}

// String formats p as "line N: Path: Message".
func (p Problem) String() string {
	return fmt.Sprintf("line %d: %s: %s", p.Line, p.Path, p.Message)
}

// pseudoParams are the pseudo parameters a Ref or ${} may name.
var pseudoParams = map[string]bool{
	"AWS::AccountId": true, "AWS::NotificationARNs": true, "AWS::NoValue": true, "AWS::Partition": true,
	"AWS::Region": true, "AWS::StackId": true, "AWS::StackName": true, "AWS::URLSuffix": true,
}

var (
	topSections = map[string]bool{
		"AWSTemplateFormatVersion": true, "Description": true, "Metadata": true, "Parameters": true,
		"Rules": true, "Mappings": true, "Conditions": true, "Transform": true, "Resources": true, "Outputs": true,
	}
	resourceKeys = map[string]bool{
		"Type": true, "Properties": true, "DependsOn": true, "Condition": true, "Metadata": true,
		"DeletionPolicy": true, "UpdateReplacePolicy": true, "CreationPolicy": true, "UpdatePolicy": true,
	}
	parameterKeys = map[string]bool{
		"Type": true, "Default": true, "Description": true, "AllowedValues": true, "AllowedPattern": true,
		"ConstraintDescription": true, "MaxLength": true, "MinLength": true, "MaxValue": true, "MinValue": true, "NoEcho": true,
	}
	outputKeys = map[string]bool{"Value": true, "Description": true, "Export": true, "Condition": true}
	// awsParamTypes are the AWS-specific parameter types (each also valid
	// inside List<…>).
	awsParamTypes = map[string]bool{
		"AWS::EC2::AvailabilityZone::Name": true, "AWS::EC2::Image::Id": true, "AWS::EC2::Instance::Id": true,
		"AWS::EC2::KeyPair::KeyName": true, "AWS::EC2::SecurityGroup::GroupName": true, "AWS::EC2::SecurityGroup::Id": true,
		"AWS::EC2::Subnet::Id": true, "AWS::EC2::Volume::Id": true, "AWS::EC2::VPC::Id": true, "AWS::Route53::HostedZone::Id": true,
	}
	deletionPolicies = map[string]bool{"Delete": true, "Retain": true, "RetainExceptOnCreate": true, "Snapshot": true}
)

// validParamType reports whether t is a valid parameter Type.
func validParamType(t string) bool {
	switch t {
	case "String", "Number", "List<Number>", "CommaDelimitedList", "AWS::SSM::Parameter::Name":
		return true
	}
	if inner, ok := strings.CutPrefix(t, "AWS::SSM::Parameter::Value<"); ok && strings.HasSuffix(inner, ">") {
		inner = strings.TrimSuffix(inner, ">")
		return inner == "String" || inner == "List<String>" || inner == "CommaDelimitedList" || validAWSParamType(inner)
	}
	return validAWSParamType(t)
}

func validAWSParamType(t string) bool {
	if inner, ok := strings.CutPrefix(t, "List<"); ok && strings.HasSuffix(inner, ">") {
		return awsParamTypes[strings.TrimSuffix(inner, ">")]
	}
	return awsParamTypes[t]
}

// Check checks t against the spec and itself, and returns the problems
// sorted by line:
//   - the template's sections, resource attributes (Type, Properties,
//     DependsOn, Condition, …), parameter Types and Output keys;
//   - that each resource Type exists (Custom::* and
//     AWS::CloudFormation::CustomResource take any properties);
//   - each property name, recursively through nested types, lists and maps;
//     required properties; literal values of the wrong kind (object for a
//     string, non-numeric string for an integer, …) and values outside a
//     spec enum; an intrinsic function is accepted for any value (both
//     branches of Fn::If are checked);
//   - Ref and ${X} in Fn::Sub name a parameter, resource or pseudo
//     parameter (Refs in Conditions: parameters only); Fn::GetAtt and
//     ${R.Attr} name a resource and one of its type's attributes
//     (Outputs.* for nested stacks); Fn::If, Condition and DependsOn name
//     existing conditions and resources; Fn::FindInMap names a mapping;
//     intrinsic functions have the right number of arguments;
//   - a local path in a property Copilot packages (see [LocalFile]) is
//     accepted although the spec wants an object.
func (s *Spec) Check(t *Template) []Problem {
	c := &checker{spec: s, t: t, skip: map[string]bool{}}
	for _, lf := range t.LocalFiles {
		c.skip[lf.Path] = true
	}
	c.template()
	sort.SliceStable(c.problems, func(i, j int) bool {
		a, b := c.problems[i], c.problems[j]
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Path < b.Path
	})
	return c.problems
}

type checker struct {
	spec     *Spec
	t        *Template
	skip     map[string]bool // paths holding a packaged local file
	problems []Problem
}

func (c *checker) add(path, format string, args ...any) {
	c.problems = append(c.problems, Problem{Path: path, Line: c.t.Line(path), Message: fmt.Sprintf(format, args...)})
}

func (c *checker) template() {
	raw := c.t.Raw
	_, transformed := raw["Transform"]
	for _, k := range sortedKeys(raw) {
		if !topSections[k] && (k != "Globals" || !transformed) { // SAM's Globals
			c.add(JoinKey("", k), "unknown template section %q", k)
		}
	}
	if v, ok := raw["AWSTemplateFormatVersion"]; ok && v != "2010-09-09" {
		c.add("AWSTemplateFormatVersion", "AWSTemplateFormatVersion must be \"2010-09-09\"")
	}
	for _, sec := range []string{"Parameters", "Mappings", "Conditions", "Resources", "Outputs"} {
		if v, ok := raw[sec]; ok {
			if _, isMap := v.(map[string]any); !isMap {
				c.add(sec, "%s must be an object", sec)
			}
		}
	}
	c.parameters()
	for _, name := range sortedKeys(c.t.Conditions) {
		c.refs(JoinKey("Conditions", name), c.t.Conditions[name], true)
	}
	if len(c.t.Resources) == 0 {
		c.add("Resources", "the template has no resources")
	}
	for _, id := range c.t.ResourceIDs() {
		c.resource(id, c.t.Resources[id])
	}
	c.outputs()
}

func (c *checker) parameters() {
	for _, name := range sortedKeys(c.t.Parameters) {
		p, path := c.t.Parameters[name], JoinKey("Parameters", name)
		if p == nil {
			c.add(path, "parameter %s is not an object", name)
			continue
		}
		for _, k := range sortedKeys(p) {
			if !parameterKeys[k] {
				c.add(JoinKey(path, k), "unknown parameter attribute %q", k)
			}
		}
		switch typ, ok := p["Type"].(string); {
		case !ok:
			c.add(path, "parameter %s has no Type", name)
		case !validParamType(typ):
			c.add(JoinKey(path, "Type"), "invalid parameter type %q", typ)
		}
	}
}

func (c *checker) outputs() {
	ids := sortedKeys(c.t.Outputs)
	c.t.sortByLine(ids, "Outputs")
	for _, name := range ids {
		o, path := c.t.Outputs[name], JoinKey("Outputs", name)
		if o == nil {
			c.add(path, "output %s is not an object", name)
			continue
		}
		for _, k := range sortedKeys(o) {
			if !outputKeys[k] {
				c.add(JoinKey(path, k), "unknown output attribute %q", k)
			}
		}
		if _, ok := o["Value"]; !ok {
			c.add(path, "output %s has no Value", name)
		}
		c.conditionName(JoinKey(path, "Condition"), o["Condition"])
		c.refs(JoinKey(path, "Value"), o["Value"], false)
		if e, ok := o["Export"]; ok {
			em, isMap := e.(map[string]any)
			if _, hasName := em["Name"]; !isMap || !hasName || len(em) != 1 {
				c.add(JoinKey(path, "Export"), "Export must be an object with just a Name")
			}
			c.refs(JoinKey(path, "Export"), e, false)
		}
	}
}

func (c *checker) resource(id string, r *Resource) {
	path := JoinKey("Resources", id)
	if r.Raw == nil {
		c.add(path, "resource %s is not an object", id)
		return
	}
	for _, k := range sortedKeys(r.Raw) {
		if !resourceKeys[k] {
			c.add(JoinKey(path, k), "unknown resource attribute %q%s", k, suggest(k, keysOf(resourceKeys)))
		}
	}
	c.conditionName(JoinKey(path, "Condition"), r.Raw["Condition"])
	if d, ok := r.Raw["DependsOn"]; ok {
		dp := JoinKey(path, "DependsOn")
		switch d := d.(type) {
		case string:
			c.resourceName(dp, d, "DependsOn")
		case []any:
			for i, e := range d {
				if s, ok := e.(string); ok {
					c.resourceName(JoinIndex(dp, i), s, "DependsOn")
				} else {
					c.add(JoinIndex(dp, i), "DependsOn entries must be resource names")
				}
			}
		default:
			c.add(dp, "DependsOn must be a resource name or a list of them")
		}
	}
	for _, k := range []string{"DeletionPolicy", "UpdateReplacePolicy"} {
		if v, ok := r.Raw[k]; ok {
			if s, isStr := v.(string); isStr && !deletionPolicies[s] {
				c.add(JoinKey(path, k), "%s must be one of Delete, Retain, RetainExceptOnCreate, Snapshot", k)
			}
		}
	}
	pp := JoinKey(path, "Properties")
	if p, ok := r.Raw["Properties"]; ok && p != nil && r.Properties == nil {
		c.add(pp, "Properties must be an object")
	}
	c.refs(pp, r.Raw["Properties"], false)
	c.refs(JoinKey(path, "Metadata"), r.Raw["Metadata"], false)

	if r.Type == "" {
		c.add(path, "resource %s has no Type", id)
		return
	}
	if strings.HasPrefix(r.Type, "Custom::") || r.Type == "AWS::CloudFormation::CustomResource" {
		if _, ok := r.Properties["ServiceToken"]; !ok {
			c.add(pp, "custom resource %s has no ServiceToken", id)
		}
		return
	}
	if strings.Contains(r.Type, "::MODULE") {
		return // a registry module: its properties are not in the spec
	}
	spec, ok := c.spec.Resources[r.Type]
	if !ok {
		c.add(JoinKey(path, "Type"), "unknown resource type %q%s", r.Type, suggest(r.Type, keysOf(c.spec.Resources)))
		return
	}
	c.object(pp, r.Properties, spec.Properties, r.Type)
}

// object checks an object's keys against the spec's properties for it.
func (c *checker) object(path string, v map[string]any, props map[string]*specProp, typeName string) {
	var missing []string
	for _, k := range sortedKeys(props) {
		if _, present := v[k]; props[k].Required && !present {
			missing = append(missing, k)
		}
	}
	suggested := map[string]bool{} // a typo'd required property is reported once
	for _, k := range sortedKeys(v) {
		p, ok := props[k]
		if !ok {
			if m := closest(k, missing); m != "" {
				suggested[m] = true
			}
			c.add(JoinKey(path, k), "unknown property %q of %s%s", k, typeName, suggest(k, keysOf(props)))
			continue
		}
		c.value(JoinKey(path, k), v[k], p.Type)
	}
	for _, k := range missing {
		if !suggested[k] {
			c.add(path, "missing required property %q of %s", k, typeName)
		}
	}
}

// value checks a property value against its type.
func (c *checker) value(path string, v any, t *specType) {
	if c.skip[path] {
		return
	}
	if fn, arg, ok := intrinsic(v); ok {
		if fn == "Fn::If" { // check what each branch would make the value
			if args, ok := arg.([]any); ok && len(args) == 3 {
				for i := 1; i < 3; i++ {
					if !isNoValue(args[i]) {
						c.value(JoinIndex(JoinKey(path, fn), i), args[i], t)
					}
				}
			}
		}
		return
	}
	if m, ok := v.(map[string]any); ok && len(m) == 1 {
		for k := range m {
			if strings.HasPrefix(k, "Fn::") {
				return // an unknown function: reported by refs
			}
		}
	}
	if v == nil {
		return // null: as if absent (a required property is reported by object)
	}
	switch t.Kind {
	case "json":
	case "string", "date-time":
		switch v.(type) {
		case string, int64, float64, bool: // CloudFormation turns scalars into strings
			c.enum(path, fmt.Sprint(v), t)
		default:
			c.add(path, "expected a string, got %s", kindOf(v))
		}
	case "integer", "number":
		n, ok := number(v)
		if !ok || (t.Kind == "integer" && n != math.Trunc(n)) {
			c.add(path, "expected %s %s, got %s", article(t.Kind), t.Kind, describe(v))
			return
		}
		c.enum(path, n, t)
	case "boolean":
		switch x := v.(type) {
		case bool:
		case string:
			if !strings.EqualFold(x, "true") && !strings.EqualFold(x, "false") {
				c.add(path, "expected a boolean, got %s", describe(v))
			}
		default:
			c.add(path, "expected a boolean, got %s", kindOf(v))
		}
	case "null":
		c.add(path, "expected null, got %s", kindOf(v))
	case "tag":
		m, ok := v.(map[string]any)
		if !ok {
			c.add(path, "expected a tag {Key, Value}, got %s", kindOf(v))
			return
		}
		str := &specType{Kind: "string"}
		c.object(path, m, map[string]*specProp{"Key": {Type: str, Required: true}, "Value": {Type: str, Required: true}}, "Tag")
	case "array":
		l, ok := v.([]any)
		if !ok {
			c.add(path, "expected a list, got %s", kindOf(v))
			return
		}
		for i, e := range l {
			c.value(JoinIndex(path, i), e, t.Element)
		}
	case "map":
		m, ok := v.(map[string]any)
		if !ok {
			c.add(path, "expected a map, got %s", kindOf(v))
			return
		}
		for _, k := range sortedKeys(m) {
			c.value(JoinKey(path, k), m[k], t.Element)
		}
	case "ref":
		def := c.spec.Types[t.Ref]
		if def == nil {
			return // a dangling reference in the spec: nothing to check against
		}
		m, ok := v.(map[string]any)
		if !ok {
			c.add(path, "expected an object (%s), got %s", def.Name, kindOf(v))
			return
		}
		c.object(path, m, def.Properties, def.Name)
	case "union":
		c.union(path, v, t)
	}
}

// union accepts v if any member type does; otherwise it reports the
// problems of the first member of v's shape, or that no member fits.
func (c *checker) union(path string, v any, t *specType) {
	var fits [][]Problem
	for _, m := range t.Types {
		sub := &checker{spec: c.spec, t: c.t, skip: c.skip}
		sub.value(path, v, m)
		if len(sub.problems) == 0 {
			return
		}
		if sameShape(v, m) {
			fits = append(fits, sub.problems)
		}
	}
	if len(fits) > 0 { // the first: the current type comes before previous ones
		c.problems = append(c.problems, fits[0]...)
		return
	}
	names := make([]string, 0, len(t.Types))
	for _, m := range t.Types {
		names = append(names, c.typeName(m))
	}
	c.add(path, "expected %s, got %s", strings.Join(names, " or "), describe(v))
}

// sameShape reports whether v is the kind of value t takes (object, list
// or scalar).
func sameShape(v any, t *specType) bool {
	switch v.(type) {
	case map[string]any:
		return t.Kind == "ref" || t.Kind == "map" || t.Kind == "tag" || t.Kind == "json"
	case []any:
		return t.Kind == "array" || t.Kind == "json"
	}
	return t.Kind != "ref" && t.Kind != "map" && t.Kind != "tag" && t.Kind != "array" && t.Kind != "union"
}

func (c *checker) typeName(t *specType) string {
	switch t.Kind {
	case "ref":
		if d := c.spec.Types[t.Ref]; d != nil {
			return "an object (" + d.Name + ")"
		}
		return "an object"
	case "array":
		return "a list"
	case "map":
		return "a map"
	case "json":
		return "JSON"
	}
	return article(t.Kind) + " " + t.Kind
}

// enum checks a literal against the type's allowed values, if any.
func (c *checker) enum(path string, v any, t *specType) {
	if len(t.AllowedValues) == 0 {
		return
	}
	for _, a := range t.AllowedValues {
		if n, ok := v.(float64); ok {
			if an, ok := a.(float64); ok && an == n {
				return
			}
		} else if fmt.Sprint(a) == v {
			return
		}
	}
	vals := make([]string, len(t.AllowedValues))
	for i, a := range t.AllowedValues {
		vals[i] = fmt.Sprint(a)
	}
	c.add(path, "%v is not one of the allowed values %s", v, strings.Join(vals, ", "))
}

// refs checks the references in v: Ref, Fn::GetAtt, Fn::Sub, Fn::If,
// Condition and Fn::FindInMap, and the arity of intrinsic functions.
// inCondition restricts Ref to parameters (as in the Conditions section).
func (c *checker) refs(path string, v any, inCondition bool) {
	switch x := v.(type) {
	case []any:
		for i, e := range x {
			c.refs(JoinIndex(path, i), e, inCondition)
		}
		return
	case map[string]any:
	default:
		return
	}
	m := v.(map[string]any)
	if name, ok := m["Condition"]; ok && len(m) == 1 && inCondition {
		c.conditionName(JoinKey(path, "Condition"), name)
		return
	}
	fn, arg, ok := intrinsic(v)
	if !ok {
		if len(m) == 1 {
			for k := range m {
				if strings.HasPrefix(k, "Fn::") {
					c.add(JoinKey(path, k), "unknown intrinsic function %s", k)
				}
			}
		}
		for _, k := range sortedKeys(m) {
			c.refs(JoinKey(path, k), m[k], inCondition)
		}
		return
	}
	fp := JoinKey(path, fn)
	args, isList := arg.([]any)
	switch fn {
	case "Ref":
		name, ok := arg.(string)
		if !ok {
			c.add(fp, "Ref takes a name")
			return
		}
		c.refName(fp, name, inCondition)
		return
	case "Fn::GetAtt":
		c.getAtt(fp, arg, inCondition)
		return
	case "Fn::Sub":
		c.sub(fp, arg, inCondition)
		return
	case "Fn::If":
		if !isList || len(args) != 3 {
			c.add(fp, "Fn::If takes [condition, value if true, value if false]")
		} else {
			c.conditionName(JoinIndex(fp, 0), args[0])
			c.refs(JoinIndex(fp, 1), args[1], inCondition)
			c.refs(JoinIndex(fp, 2), args[2], inCondition)
			return
		}
	case "Fn::FindInMap":
		if !isList || len(args) < 3 || len(args) > 4 {
			c.add(fp, "Fn::FindInMap takes [map, top-level key, second-level key]")
		} else if name, ok := args[0].(string); ok {
			if _, found := c.t.Mappings[name]; !found {
				c.add(JoinIndex(fp, 0), "mapping %q does not exist", name)
			}
		}
	case "Fn::Join":
		if !isList || len(args) != 2 {
			c.add(fp, "Fn::Join takes [delimiter, list]")
		}
	case "Fn::Select", "Fn::Split", "Fn::Equals":
		if !isList || len(args) != 2 {
			c.add(fp, "%s takes two arguments", fn)
		}
	case "Fn::Cidr":
		if !isList || len(args) != 3 {
			c.add(fp, "Fn::Cidr takes [ipBlock, count, cidrBits]")
		}
	case "Fn::Not":
		if !isList || len(args) != 1 {
			c.add(fp, "Fn::Not takes a one-element list")
		}
	case "Fn::And", "Fn::Or":
		if !isList || len(args) < 2 || len(args) > 10 {
			c.add(fp, "%s takes a list of 2 to 10 conditions", fn)
		}
	}
	c.refs(fp, arg, inCondition)
}

// refName checks the target of a Ref (or ${name} in Fn::Sub).
func (c *checker) refName(path, name string, inCondition bool) {
	if pseudoParams[name] {
		return
	}
	if _, ok := c.t.Parameters[name]; ok {
		return
	}
	if _, ok := c.t.Resources[name]; ok {
		if inCondition {
			c.add(path, "conditions can only refer to parameters, not resource %s", name)
		}
		return
	}
	c.add(path, "%q is not a parameter, resource or pseudo parameter%s", name, suggest(name, c.refTargets()))
}

func (c *checker) refTargets() []string {
	out := keysOf(pseudoParams)
	for k := range c.t.Parameters {
		out = append(out, k)
	}
	for k := range c.t.Resources {
		out = append(out, k)
	}
	return out
}

// resourceName checks that name is a resource.
func (c *checker) resourceName(path, name, what string) {
	if _, ok := c.t.Resources[name]; !ok {
		c.add(path, "%s: resource %q does not exist%s", what, name, suggest(name, keysOf(c.t.Resources)))
	}
}

// conditionName checks that v (if not nil) names a condition.
func (c *checker) conditionName(path string, v any) {
	if v == nil {
		return
	}
	name, ok := v.(string)
	if !ok {
		c.add(path, "a condition name must be a string")
		return
	}
	if _, ok := c.t.Conditions[name]; !ok {
		c.add(path, "condition %q does not exist%s", name, suggest(name, keysOf(c.t.Conditions)))
	}
}

// getAtt checks Fn::GetAtt [resource, attribute] (or "resource.attribute").
func (c *checker) getAtt(path string, arg any, inCondition bool) {
	var res string
	var attr any
	switch a := arg.(type) {
	case string:
		r, at, ok := strings.Cut(a, ".")
		if !ok {
			c.add(path, "Fn::GetAtt takes [resource, attribute]")
			return
		}
		res, attr = r, at
	case []any:
		var r string
		ok := len(a) == 2
		if ok {
			r, ok = a[0].(string)
		}
		if !ok {
			c.add(path, "Fn::GetAtt takes [resource, attribute]")
			return
		}
		res, attr = r, a[1]
		c.refs(JoinIndex(path, 1), a[1], inCondition)
	default:
		c.add(path, "Fn::GetAtt takes [resource, attribute]")
		return
	}
	if inCondition {
		c.add(path, "conditions cannot use Fn::GetAtt")
		return
	}
	name, _ := attr.(string)
	c.attribute(path, res, name)
}

// attribute checks that res is a resource and, if attr is not "" (a literal
// name), one of its type's attributes.
func (c *checker) attribute(path, res, attr string) {
	r, ok := c.t.Resources[res]
	if !ok {
		c.add(path, "resource %q does not exist%s", res, suggest(res, keysOf(c.t.Resources)))
		return
	}
	if attr == "" || r.Type == "" || strings.HasPrefix(r.Type, "Custom::") || r.Type == "AWS::CloudFormation::CustomResource" {
		return
	}
	if (r.Type == "AWS::CloudFormation::Stack" || r.Type == "AWS::Serverless::Application") && strings.HasPrefix(attr, "Outputs.") {
		return
	}
	spec, ok := c.spec.Resources[r.Type]
	if !ok {
		return // reported on the resource
	}
	for _, a := range spec.Attributes {
		if a == attr {
			return
		}
	}
	c.add(path, "%s (%s) has no attribute %q; it has %s", res, r.Type, attr, strings.Join(spec.Attributes, ", "))
}

// subVar matches ${…} in an Fn::Sub string.
var subVar = regexp.MustCompile(`\$\{([^}]*)\}`)

// sub checks Fn::Sub: a string, or [string, {name: value}].
func (c *checker) sub(path string, arg any, inCondition bool) {
	var str string
	var vars map[string]any
	strPath := path
	switch a := arg.(type) {
	case string:
		str = a
	case []any:
		var s string
		ok := len(a) == 2
		if ok {
			s, ok = a[0].(string)
		}
		if !ok {
			c.add(path, "Fn::Sub takes a string or [string, {variables}]")
			return
		}
		if vars, ok = a[1].(map[string]any); !ok {
			c.add(JoinIndex(path, 1), "Fn::Sub variables must be an object")
		}
		str, strPath = s, JoinIndex(path, 0)
		for _, k := range sortedKeys(vars) {
			c.refs(JoinKey(JoinIndex(path, 1), k), vars[k], inCondition)
		}
	default:
		c.add(path, "Fn::Sub takes a string or [string, {variables}]")
		return
	}
	for _, m := range subVar.FindAllStringSubmatch(str, -1) {
		name := strings.TrimSpace(m[1])
		switch {
		case strings.HasPrefix(m[1], "!"):
			continue // ${!Literal}
		case name == "":
			c.add(strPath, "empty ${} in Fn::Sub")
			continue
		}
		if _, bound := vars[name]; bound {
			continue
		}
		if res, attr, ok := strings.Cut(name, "."); ok {
			c.attribute(strPath, res, attr)
			continue
		}
		c.refName(strPath, name, inCondition)
	}
}

// intrinsic reports whether v is an intrinsic function call, a
// one-key object whose key is Ref or Fn::*, and returns the function name
// and argument. {"Condition": name} is a function only in conditions (refs
// handles it there); elsewhere it may be an object with a Condition
// property (e.g. an ECS ContainerDependency).
func intrinsic(v any) (fn string, arg any, ok bool) {
	m, isMap := v.(map[string]any)
	if !isMap || len(m) != 1 {
		return "", nil, false
	}
	for k, a := range m {
		switch k {
		case "Ref", "Fn::Base64", "Fn::Cidr", "Fn::FindInMap", "Fn::GetAtt", "Fn::GetAZs",
			"Fn::ImportValue", "Fn::Join", "Fn::Select", "Fn::Split", "Fn::Sub", "Fn::Transform",
			"Fn::If", "Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or", "Fn::Length", "Fn::ToJsonString":
			return k, a, true
		}
	}
	return "", nil, false
}

func isNoValue(v any) bool {
	fn, arg, ok := intrinsic(v)
	return ok && fn == "Ref" && arg == "AWS::NoValue"
}

// number returns a numeric literal (or numeric string) as a float64.
func number(v any) (float64, bool) {
	switch x := v.(type) {
	case int64:
		return float64(x), true
	case float64:
		return x, true
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		return f, err == nil
	}
	return 0, false
}

func kindOf(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case int64, float64:
		return "a number"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

// describe is kindOf plus the value for a scalar.
func describe(v any) string {
	switch v.(type) {
	case string:
		return fmt.Sprintf("%q", v)
	case bool, int64, float64:
		return fmt.Sprint(v)
	}
	return kindOf(v)
}

func article(word string) string {
	if strings.ContainsRune("aeiou", rune(word[0])) {
		return "an"
	}
	return "a"
}

func sortedKeys[V any](m map[string]V) []string {
	keys := keysOf(m)
	sort.Strings(keys)
	return keys
}

func keysOf[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

// suggest returns `; did you mean "X"?` for the closest candidate, or "".
func suggest(name string, candidates []string) string {
	if best := closest(name, candidates); best != "" {
		return fmt.Sprintf("; did you mean %q?", best)
	}
	return ""
}

// closest returns the candidate closest to name (same letters ignoring
// case, or at most two edits away), or "".
func closest(name string, candidates []string) string {
	best, bestD := "", 3
	sort.Strings(candidates)
	for _, cand := range candidates {
		d := distance(strings.ToLower(name), strings.ToLower(cand))
		if d < bestD {
			best, bestD = cand, d
		}
	}
	return best
}

// distance is the Levenshtein distance between a and b, capped at 3.
func distance(a, b string) int {
	if d := len(a) - len(b); d > 2 || d < -2 {
		return 3
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return min(prev[len(b)], 3)
}
