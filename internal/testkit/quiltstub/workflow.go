package quiltstub

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"benchling-webhook/internal/workflow"
)

// WorkflowConfigKey is where a bucket keeps its Quilt workflows config
// (quilt3 PackageRegistry.workflow_conf_path).
const WorkflowConfigKey = ".quilt/workflows/config.yml"

// draft7 is the only metadata meta-schema quilt3 supports.
const draft7 = "http://json-schema.org/draft-07/schema#"

// Kinds of [Refusal]: the Python exception classes Quilt raises.
const (
	// ValidationError: the message is not a valid PackagerEvent (pydantic).
	ValidationError = "ValidationError"
	// QuiltException: quilt3 refuses, e.g. no workflow where one is required.
	QuiltException = "QuiltException"
	// ConfigurationError: the workflows config or a schema is unusable.
	ConfigurationError = "ConfigurationError"
	// WorkflowValidationError: the package fails its workflow's checks.
	WorkflowValidationError = "WorkflowValidationError"
	// PkgpushException: the packaging engine's own checks (S3 keys, metadata).
	PkgpushException = "PkgpushException"
	// RegexError: re.compile refuses a handle_pattern (Python's re.error,
	// not a QuiltException: the job fails all the same).
	RegexError = "re.error"
)

// Refusal is why Quilt builds no package for a message: the exception
// Quilt raises, with its message as quilt3 words it. Quilt reports it
// nowhere but its own logs; the stand-in keeps it in [Result].Err.
type Refusal struct {
	Kind, Message string
	// Err is the underlying error, if any.
	Err error
}

func (r *Refusal) Error() string {
	if r.Err != nil {
		return "quiltstub: " + r.Kind + ": " + r.Message + ": " + r.Err.Error()
	}
	return "quiltstub: " + r.Kind + ": " + r.Message
}

func (r *Refusal) Unwrap() error { return r.Err }

func refusal(kind string, cause error, format string, args ...any) *Refusal {
	return &Refusal{Kind: kind, Message: fmt.Sprintf(format, args...), Err: cause}
}

// workflowArg is the message's workflow: absent or null means the
// config's default workflow; "" means none; anything else names one
// (PackagerEvent.workflow_normalized).
type workflowArg struct {
	set  bool // false: use the default
	name *string
}

func (w workflowArg) String() string {
	switch {
	case !w.set:
		return "..."
	case w.name == nil:
		return "None"
	}
	return pyRepr(*w.name)
}

func pyRepr(s string) string { return "'" + strings.ReplaceAll(s, "'", `\'`) + "'" }

// workflowConfig is a loaded and checked config.yml.
type workflowConfig struct {
	raw map[string]any
	url string // str(PhysicalKey) of the config
}

// loadWorkflowConfig reads s3://bucket/.quilt/workflows/config.yml as
// quilt3's WorkflowConfig.load does: nil if the object does not exist,
// an error if it cannot be read, parsed, or fails the config schema or
// the version check (1.1.0 at most).
func (p *Packager) loadWorkflowConfig(ctx context.Context, bucket string) (*workflowConfig, error) {
	data, version, found, err := p.getVersion(ctx, bucket, WorkflowConfigKey)
	if err != nil {
		return nil, refusal(ConfigurationError, err, "Couldn't load workflows config.")
	}
	if !found {
		return nil, nil
	}
	// safe_load: PyYAML's booleans (yes/no/on/off), as the shipped check.
	inst, err := workflow.DecodeYAML(data)
	if err != nil {
		return nil, refusal(ConfigurationError, err, "Couldn't parse workflows config as YAML")
	}
	// quilt3's config-1.schema.json; its one copy is the shipped check's.
	sch, err := compileSchema("config-1.schema.json", workflow.ConfigSchema)
	if err != nil {
		return nil, fmt.Errorf("quiltstub: the embedded config schema: %w", err)
	}
	if err := sch.Validate(inst); err != nil {
		return nil, refusal(ConfigurationError, err, "Workflows config failed validation")
	}
	raw := inst.(map[string]any)
	dataVersion, _ := raw["version"].(string)
	if m, ok := raw["version"].(map[string]any); ok {
		dataVersion, _ = m["base"].(string)
	}
	if !supportedVersion(dataVersion) {
		return nil, refusal(ConfigurationError, nil, "Version '%s' is not supported", dataVersion)
	}
	return &workflowConfig{raw: raw, url: s3URL(bucket, WorkflowConfigKey, version)}, nil
}

// supportedVersion reports CONFIG_DATA_VERSION (1.1.0) >= v.
func supportedVersion(v string) bool {
	parts := append(strings.Split(v, "."), "0", "0")[:3]
	var n [3]int
	for i, s := range parts {
		n[i], _ = strconv.Atoi(s)
	}
	want := [3]int{1, 1, 0}
	for i := range n {
		if n[i] != want[i] {
			return n[i] < want[i]
		}
	}
	return true
}

// compileSchema compiles a draft-07 schema as Python's jsonschema
// Draft7Validator applies it: "format" is an annotation, not an assertion
// (no format_checker), except "regex", which the library always checks.
func compileSchema(name string, data []byte) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft7)
	for _, f := range formatNames(doc, nil) {
		if f != "regex" {
			c.RegisterFormat(&jsonschema.Format{Name: f, Validate: func(any) error { return nil }})
		}
	}
	if err := c.AddResource(name, doc); err != nil {
		return nil, err
	}
	return c.Compile(name)
}

// formatNames collects every string under a "format" key in doc.
func formatNames(doc any, out []string) []string {
	switch t := doc.(type) {
	case map[string]any:
		for k, v := range t {
			if s, ok := v.(string); ok && k == "format" {
				out = append(out, s)
			}
			out = formatNames(v, out)
		}
	case []any:
		for _, v := range t {
			out = formatNames(v, out)
		}
	}
	return out
}

// validateWorkflow is quilt3's workflows.validate for the packaging
// engine's call: it returns the workflow record stored in the package
// metadata (nil for none), or why Quilt refuses the package.
func (p *Packager) validateWorkflow(ctx context.Context, registry string, wf workflowArg, name string, meta value,
	message *string, entries []Entry) (*object, error) {
	conf, err := p.loadWorkflowConfig(ctx, registry)
	if err != nil {
		return nil, err
	}
	if conf == nil {
		if !wf.set {
			return nil, nil
		}
		return nil, refusal(QuiltException, nil, "%s workflow is specified, but no workflows config exist.", wf)
	}
	workflow := wf.name
	if !wf.set {
		if d, ok := conf.raw["default_workflow"].(string); ok {
			workflow = &d
		}
	}
	workflows, _ := conf.raw["workflows"].(map[string]any)
	var data map[string]any
	switch {
	case workflow == nil:
		if req, ok := conf.raw["is_workflow_required"].(bool); !ok || req {
			return nil, refusal(QuiltException, nil, "Workflow required, but none specified.")
		}
		data = map[string]any{}
	default:
		d, ok := workflows[*workflow].(map[string]any)
		if !ok {
			return nil, refusal(QuiltException, nil, "There is no %s workflow in config.", pyRepr(*workflow))
		}
		data = d
	}
	var pattern *regexp.Regexp
	if s, _ := data["handle_pattern"].(string); s != "" {
		if pattern, err = regexp.Compile(s); err != nil {
			// Go's RE2: also a lookaround, which Python takes.
			return nil, refusal(RegexError, err, "handle_pattern %s", pyRepr(s))
		}
	}
	schemas := map[string]string{} // schema id -> URL, in the order loaded
	var order []string
	validator := func(key string) (*jsonschema.Schema, error) {
		id, _ := data[key].(string)
		if id == "" {
			return nil, nil
		}
		s, u, err := p.loadSchema(ctx, conf, id)
		if err != nil {
			return nil, err
		}
		if _, ok := schemas[id]; !ok {
			order = append(order, id)
		}
		schemas[id] = u
		return s, nil
	}
	metaSchema, err := validator("metadata_schema")
	if err != nil {
		return nil, err
	}
	entriesSchema, err := validator("entries_schema")
	if err != nil {
		return nil, err
	}
	record := &object{}
	if workflow == nil {
		record.set("id", nil)
	} else {
		record.set("id", *workflow)
	}
	record.set("config", conf.url)
	if len(order) > 0 {
		s := &object{}
		for _, id := range order {
			s.set(id, schemas[id])
		}
		record.set("schemas", s)
	}

	if req, _ := data["is_message_required"].(bool); req && (message == nil || *message == "") {
		return nil, refusal(WorkflowValidationError, nil, "Commit message is required by workflow, but none was provided.")
	}
	if pattern != nil && !pattern.MatchString(name) {
		return nil, refusal(WorkflowValidationError, nil, "Package name doesn't match required pattern.")
	}
	if metaSchema != nil {
		if err := metaSchema.Validate(toPlain(meta)); err != nil {
			return nil, refusal(WorkflowValidationError, err, "Metadata failed validation")
		}
	}
	if entriesSchema != nil {
		list := make([]any, len(entries))
		for i, e := range entries {
			list[i] = map[string]any{"logical_key": e.LogicalKey, "size": json.Number(strconv.FormatInt(e.Size, 10)), "meta": map[string]any{}}
		}
		if err := entriesSchema.Validate(list); err != nil {
			return nil, refusal(WorkflowValidationError, err, "Package entries failed validation")
		}
	}
	return record, nil
}

// loadSchema fetches and compiles the schema with the given id from the
// config's schemas (WorkflowConfig.make_validator_from_schema): an S3 URL,
// JSON without any $ref, draft 7 if it names a $schema.
func (p *Packager) loadSchema(ctx context.Context, conf *workflowConfig, id string) (*jsonschema.Schema, string, error) {
	schemas, _ := conf.raw["schemas"].(map[string]any)
	entry, ok := schemas[id].(map[string]any)
	if !ok {
		return nil, "", refusal(ConfigurationError, nil, "There is no %s in schemas.", pyRepr(id))
	}
	raw, _ := entry["url"].(string)
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "s3" && u.Scheme != "file") || (u.Scheme == "s3" && u.Host == "") {
		return nil, "", refusal(ConfigurationError, nil, "Couldn't parse URL %s.", pyRepr(raw))
	}
	if u.Scheme == "file" {
		return nil, "", refusal(ConfigurationError, nil, "Local schema %s can't be used on the remote registry.", pyRepr(raw))
	}
	key := strings.TrimPrefix(u.Path, "/")
	data, version, found, err := p.getVersion(ctx, u.Host, key)
	if err == nil && !found {
		err = errors.New("NoSuchKey")
	}
	if err != nil {
		return nil, "", refusal(ConfigurationError, err, "Couldn't load schema at %s", s3URL(u.Host, key, ""))
	}
	effective := s3URL(u.Host, key, version)
	doc, err := decodeJSON(data)
	if err != nil {
		return nil, "", refusal(ConfigurationError, err, "Couldn't parse %s as JSON", effective)
	}
	if hasRef(doc) {
		return nil, "", refusal(QuiltException, nil, "Currently we don't support $ref in schema.")
	}
	if o, ok := doc.(*object); ok {
		if ms, ok := o.get("$schema"); ok {
			s, isStr := ms.(string)
			if !isStr {
				return nil, "", refusal(ConfigurationError, nil, "$schema must be a string.")
			}
			if s != draft7 {
				return nil, "", refusal(ConfigurationError, nil, "Unsupported meta-schema: %s.", s)
			}
		}
	}
	sch, err := compileSchema(effective, data)
	if err != nil {
		return nil, "", refusal(ConfigurationError, err, "Schema %s is not valid", pyRepr(id))
	}
	return sch, effective, nil
}

// hasRef reports an object with a "$ref" member anywhere in v (quilt3's
// _schema_load_object_hook refuses them all).
func hasRef(v value) bool {
	switch t := v.(type) {
	case *object:
		if _, ok := t.get("$ref"); ok {
			return true
		}
		for _, k := range t.keys {
			if hasRef(t.vals[k]) {
				return true
			}
		}
	case []value:
		for _, e := range t {
			if hasRef(e) {
				return true
			}
		}
	}
	return false
}
