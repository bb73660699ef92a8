package cfncheck

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Template is a parsed CloudFormation template. Intrinsic functions appear
// in their JSON (long) form whichever way they were written, so
// `!GetAtt Role.Arn` reads as map[string]any{"Fn::GetAtt": []any{"Role", "Arn"}}.
// Scalars are string, int64, float64, bool or nil; objects are
// map[string]any and lists []any.
//
// A Template is not modified by this package after [Load] or [Parse]
// returns, so it is safe for concurrent reads.
type Template struct {
	// Path is the file the template was read from ("" for [Parse]).
	Path string
	// Raw is the whole document.
	Raw map[string]any
	// Parameters maps each parameter's logical ID to its declaration.
	Parameters map[string]map[string]any
	// Mappings is the Mappings section.
	Mappings map[string]any
	// Conditions maps each condition name to its (intrinsic) body.
	Conditions map[string]any
	// Resources maps each logical ID to its resource. An entry that is not
	// an object has a zero Resource (Check reports it).
	Resources map[string]*Resource
	// Outputs maps each output's logical ID to its declaration.
	Outputs map[string]map[string]any
	// LocalFiles lists properties holding a local path that Copilot uploads
	// to S3 on deploy and replaces by the S3 location; see [LocalFile].
	LocalFiles []LocalFile

	lines map[string]int
}

// Resource is one entry of the Resources section.
type Resource struct {
	// Type is the resource type, e.g. AWS::IAM::Role ("" if not a string).
	Type string
	// Properties is the Properties object (nil if absent or not an object).
	Properties map[string]any
	// Condition is the name in the resource's Condition attribute, if any.
	Condition string
	// DependsOn lists the logical IDs in DependsOn (string or list).
	DependsOn []string
	// Raw is the whole resource declaration.
	Raw map[string]any
}

// LocalFile is a property whose literal value is a local path that Copilot
// packages: on deploy it uploads the file (or zipped directory) and puts its
// S3 location in its place. Relative paths are resolved from the parent of
// the copilot/ directory (see [CopilotBase]). The properties are those of
// copilot-cli's internal/pkg/addon/package.go (the `aws cloudformation
// package` list), e.g. AWS::StepFunctions::StateMachine.DefinitionS3Location.
type LocalFile struct {
	// Path is the property's path in the template, e.g.
	// Resources.Machine.Properties.DefinitionS3Location.
	Path string
	// Line is the 1-based line of the value.
	Line int
	// File is the path as written in the template.
	File string
}

// packaged lists, per resource type, the property paths Copilot packages.
// objectForm marks those whose spec type is an object (a local path string
// stands in for it before packaging).
var packaged = map[string][]struct {
	path       []string
	objectForm bool
}{
	"AWS::ApiGateway::RestApi":                  {{[]string{"BodyS3Location"}, true}},
	"AWS::Lambda::Function":                     {{[]string{"Code"}, true}},
	"AWS::Lambda::LayerVersion":                 {{[]string{"Content"}, true}},
	"AWS::Serverless::Function":                 {{[]string{"CodeUri"}, false}},
	"AWS::Serverless::LayerVersion":             {{[]string{"ContentUri"}, false}},
	"AWS::Serverless::Api":                      {{[]string{"DefinitionUri"}, false}},
	"AWS::Serverless::StateMachine":             {{[]string{"DefinitionUri"}, false}},
	"AWS::AppSync::GraphQLSchema":               {{[]string{"DefinitionS3Location"}, false}},
	"AWS::AppSync::Resolver":                    {{[]string{"RequestMappingTemplateS3Location"}, false}, {[]string{"ResponseMappingTemplateS3Location"}, false}},
	"AWS::AppSync::FunctionConfiguration":       {{[]string{"RequestMappingTemplateS3Location"}, false}, {[]string{"ResponseMappingTemplateS3Location"}, false}},
	"AWS::ElasticBeanstalk::ApplicationVersion": {{[]string{"SourceBundle"}, true}},
	"AWS::CloudFormation::Stack":                {{[]string{"TemplateURL"}, false}},
	"AWS::Glue::Job":                            {{[]string{"Command", "ScriptLocation"}, false}},
	"AWS::StepFunctions::StateMachine":          {{[]string{"DefinitionS3Location"}, true}},
	"AWS::CodeCommit::Repository":               {{[]string{"Code", "S3"}, true}},
}

// isLocalPath reports whether Copilot treats s as a local path: anything
// but an s3:// or http(s):// URL.
func isLocalPath(s string) bool {
	return s != "" && !strings.HasPrefix(s, "s3://") && !strings.HasPrefix(s, "http://") && !strings.HasPrefix(s, "https://")
}

// CopilotBase returns the directory Copilot resolves relative local paths in
// an addon template from: the parent of the nearest directory named copilot
// above templatePath. It returns false if there is none.
func CopilotBase(templatePath string) (string, bool) {
	abs, err := filepath.Abs(templatePath)
	if err != nil {
		return "", false
	}
	for dir := filepath.Dir(abs); ; {
		if filepath.Base(dir) == "copilot" {
			return filepath.Dir(dir), true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

// Load reads and parses the template at path; see [Parse].
func Load(path string) (*Template, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cfncheck: read template: %w", err)
	}
	t, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	t.Path = path
	return t, nil
}

// Parse parses a YAML (or JSON) template, turning short-form intrinsic tags
// into their long form. It fails on invalid YAML, an unknown or misused
// tag, a duplicate key, or a document that is not an object; anything else
// is left for [Spec.Check] to report.
func Parse(data []byte) (*Template, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("cfncheck: parse YAML: %w", err)
	}
	p := &parser{lines: map[string]int{}}
	v, err := p.convert("", &doc)
	if err != nil {
		return nil, err
	}
	raw, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("cfncheck: line %d: template is not an object", doc.Line)
	}
	t := &Template{
		Raw:        raw,
		Parameters: map[string]map[string]any{},
		Mappings:   asMap(raw["Mappings"]),
		Conditions: asMap(raw["Conditions"]),
		Resources:  map[string]*Resource{},
		Outputs:    map[string]map[string]any{},
		lines:      p.lines,
	}
	for k, v := range asMap(raw["Parameters"]) {
		t.Parameters[k] = asMap(v)
	}
	for k, v := range asMap(raw["Outputs"]) {
		t.Outputs[k] = asMap(v)
	}
	for k, v := range asMap(raw["Resources"]) {
		r := &Resource{Raw: asMap(v)}
		r.Type, _ = r.Raw["Type"].(string)
		r.Properties, _ = r.Raw["Properties"].(map[string]any)
		r.Condition, _ = r.Raw["Condition"].(string)
		switch d := r.Raw["DependsOn"].(type) {
		case string:
			r.DependsOn = []string{d}
		case []any:
			for _, e := range d {
				if s, ok := e.(string); ok {
					r.DependsOn = append(r.DependsOn, s)
				}
			}
		}
		t.Resources[k] = r
		t.findLocalFiles(k, r)
	}
	sort.Slice(t.LocalFiles, func(i, j int) bool { return t.LocalFiles[i].Line < t.LocalFiles[j].Line })
	return t, nil
}

// findLocalFiles records r's packaged properties that hold a local path.
func (t *Template) findLocalFiles(id string, r *Resource) {
	for _, pk := range packaged[r.Type] {
		var v any = r.Properties
		path := JoinKey(JoinKey(JoinKey("", "Resources"), id), "Properties")
		for _, k := range pk.path {
			v = asMap(v)[k]
			path = JoinKey(path, k)
		}
		if s, ok := v.(string); ok && isLocalPath(s) {
			t.LocalFiles = append(t.LocalFiles, LocalFile{Path: path, Line: t.Line(path), File: s})
		}
	}
}

// Line returns the 1-based line of the value at path (as in
// [Problem.Path]), or of its nearest enclosing value if path itself was
// not in the source; 0 if nothing matches.
func (t *Template) Line(path string) int {
	for {
		if l, ok := t.lines[path]; ok {
			return l
		}
		if path == "" {
			return 0
		}
		path = parentPath(path)
	}
}

// ResourceIDs returns the logical IDs of the resources in source order.
func (t *Template) ResourceIDs() []string {
	ids := make([]string, 0, len(t.Resources))
	for id := range t.Resources {
		ids = append(ids, id)
	}
	t.sortByLine(ids, "Resources")
	return ids
}

// sortByLine sorts the keys of section by their line in the source.
func (t *Template) sortByLine(keys []string, section string) {
	base := JoinKey("", section)
	sort.Slice(keys, func(i, j int) bool {
		li, lj := t.Line(JoinKey(base, keys[i])), t.Line(JoinKey(base, keys[j]))
		if li != lj {
			return li < lj
		}
		return keys[i] < keys[j]
	})
}

// asMap returns v as an object, or nil.
func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// JoinKey appends an object key to a value path as [Template.Line] and
// [Problem] spell them: `.Key`, or `["a.b"]` when the key has characters
// that would make the path ambiguous.
func JoinKey(path, key string) string {
	if key == "" || strings.ContainsAny(key, ".[]\" \t\n") {
		return path + "[" + strconv.Quote(key) + "]"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

// JoinIndex appends a list index to a value path.
func JoinIndex(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// parentPath removes the last segment of a path built by joinKey and
// joinIndex.
func parentPath(path string) string {
	last, inQuote := 0, false
	for i := 0; i < len(path); i++ {
		switch c := path[i]; {
		case inQuote && c == '\\':
			i++
		case c == '"':
			inQuote = !inQuote
		case !inQuote && (c == '.' || c == '['):
			last = i
		}
	}
	return path[:last]
}

// parser converts yaml.Nodes to plain values and records each value's line.
type parser struct {
	lines map[string]int
}

// shortForms maps each short-form tag to its long-form key.
var shortForms = map[string]string{
	"!Ref": "Ref", "!Condition": "Condition", "!GetAtt": "Fn::GetAtt",
	"!Sub": "Fn::Sub", "!Join": "Fn::Join", "!Select": "Fn::Select", "!Split": "Fn::Split",
	"!If": "Fn::If", "!Equals": "Fn::Equals", "!Not": "Fn::Not", "!And": "Fn::And", "!Or": "Fn::Or",
	"!ImportValue": "Fn::ImportValue", "!FindInMap": "Fn::FindInMap", "!Base64": "Fn::Base64",
	"!Cidr": "Fn::Cidr", "!GetAZs": "Fn::GetAZs", "!Transform": "Fn::Transform",
	"!Length": "Fn::Length", "!ToJsonString": "Fn::ToJsonString",
}

func (p *parser) convert(path string, n *yaml.Node) (any, error) {
	p.lines[path] = n.Line
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return p.convert(path, n.Content[0])
	case yaml.AliasNode:
		return p.convert(path, n.Alias)
	}
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		return p.intrinsic(path, n)
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			kn, vn := n.Content[i], n.Content[i+1]
			if kn.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("cfncheck: line %d: object key is not a scalar", kn.Line)
			}
			k := kn.Value
			if _, dup := m[k]; dup {
				return nil, fmt.Errorf("cfncheck: line %d: duplicate key %q", kn.Line, k)
			}
			kp := JoinKey(path, k)
			v, err := p.convert(kp, vn)
			if err != nil {
				return nil, err
			}
			p.lines[kp] = kn.Line // point at the key, not a nested block's first line
			m[k] = v
		}
		return m, nil
	case yaml.SequenceNode:
		l := make([]any, 0, len(n.Content))
		for i, e := range n.Content {
			v, err := p.convert(JoinIndex(path, i), e)
			if err != nil {
				return nil, err
			}
			l = append(l, v)
		}
		return l, nil
	default:
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, fmt.Errorf("cfncheck: line %d: %w", n.Line, err)
		}
		switch x := v.(type) {
		case int:
			return int64(x), nil
		case uint64:
			return float64(x), nil
		case string, int64, float64, bool, nil:
			return x, nil
		default: // e.g. an explicit !!timestamp or !!binary: keep the text
			return n.Value, nil
		}
	}
}

// intrinsic converts a node with a short-form tag to its long form.
func (p *parser) intrinsic(path string, n *yaml.Node) (any, error) {
	fn, ok := shortForms[n.Tag]
	if !ok {
		return nil, fmt.Errorf("cfncheck: line %d: unknown tag %s", n.Line, n.Tag)
	}
	fp := JoinKey(path, fn)
	p.lines[fp] = n.Line
	inner := *n
	inner.Tag = ""
	inner.Style &^= yaml.TaggedStyle
	switch fn {
	case "Ref", "Condition":
		if n.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("cfncheck: line %d: %s takes a name", n.Line, n.Tag)
		}
		return map[string]any{fn: n.Value}, nil
	case "Fn::GetAtt":
		if n.Kind == yaml.ScalarNode {
			res, attr, ok := strings.Cut(n.Value, ".")
			if !ok || res == "" || attr == "" {
				return nil, fmt.Errorf("cfncheck: line %d: !GetAtt %q is not Resource.Attribute", n.Line, n.Value)
			}
			p.lines[JoinIndex(fp, 0)] = n.Line
			p.lines[JoinIndex(fp, 1)] = n.Line
			return map[string]any{fn: []any{res, attr}}, nil
		}
	}
	if n.Kind == yaml.ScalarNode {
		// A tagged scalar is a string whatever it looks like (!Base64 123).
		return map[string]any{fn: n.Value}, nil
	}
	v, err := p.convert(fp, &inner)
	if err != nil {
		return nil, err
	}
	p.lines[fp] = n.Line
	return map[string]any{fn: v}, nil
}
