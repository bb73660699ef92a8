// Package workflow checks a package against its bucket's Quilt workflow
// config (.quilt/workflows/config.yml) as Quilt's packager does, so that a
// package Quilt would refuse fails before anything is written. See
// docs/deploy.md, "Quilt workflows".
package workflow

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"benchling-webhook/internal/exitcode"
	"benchling-webhook/internal/store"
)

// ConfigKey is where a bucket keeps its workflow config.
const ConfigKey = ".quilt/workflows/config.yml"

// Size caps: the config and a schema are small documents.
const (
	MaxConfigBytes = 1 << 20
	MaxSchemaBytes = 1 << 20
)

// None is the setting's value for "no workflow": the message then names
// none, and Quilt uses the config's default_workflow, if any.
const None = "none"

// ConfigSchema is quilt3's api/python/quilt3/workflows/config-1.schema.json
// (quiltdata/quilt, Apache License 2.0), verbatim: Quilt refuses every
// package of a bucket whose config fails it (WorkflowConfig.load).
//
//go:embed config-1.schema.json
var ConfigSchema []byte

// draft7 is the only meta-schema Quilt accepts in a schema's $schema.
const draft7 = "http://json-schema.org/draft-07/schema#"

// supportedVersion is the newest config version Quilt reads (quilt3's
// WorkflowConfig.CONFIG_DATA_VERSION).
var supportedVersion = [3]int{1, 1, 0}

// namePattern is a workflow name in a config (Quilt's config schema,
// workflows' propertyNames), at most 64 characters.
var namePattern = regexp.MustCompile(`^[A-Za-z_-][A-Za-z0-9_-]{0,63}$`)

// ValidName reports whether name can name a workflow in a config.
func ValidName(name string) bool { return namePattern.MatchString(name) }

// Reasons a package is refused: the "reason" of a [RejectedError], also the
// metric's property (docs/operations.md, "Metrics").
const (
	// ReasonRequired: the config requires a workflow (is_workflow_required
	// defaults to true once the file exists), none is configured, and the
	// config has no default_workflow.
	ReasonRequired = "workflow-required"
	// ReasonUnknown: the configured workflow is not in the config, or the
	// bucket has no config at all.
	ReasonUnknown = "unknown-workflow"
	// ReasonHandle: the package name does not match handle_pattern.
	ReasonHandle = "handle-pattern"
	// ReasonMessage: the workflow requires a commit message and there is none.
	ReasonMessage = "message-required"
	// ReasonMetadata: the metadata fails the workflow's metadata_schema.
	ReasonMetadata = "metadata-schema"
	// ReasonConfig: the config or a schema is broken in a way that makes
	// Quilt refuse every package (unreadable YAML, a missing schema, $ref).
	ReasonConfig = "invalid-config"
)

// ErrRejected is wrapped by every [RejectedError], for errors.Is.
var ErrRejected = exitcode.NewSentinel("workflow: the bucket's Quilt workflow would refuse the package", exitcode.WorkflowRejected)

// RejectedError says why the bucket's workflow would refuse the package.
// Its exit code is [exitcode.WorkflowRejected].
type RejectedError struct {
	// Reason is one of the Reason constants.
	Reason string
	// Workflow is the workflow checked ("" when none applies).
	Workflow string
	// Detail says what is wrong, naming the schema and the failing keyword.
	Detail string
}

func (e *RejectedError) Error() string {
	w := ""
	if e.Workflow != "" {
		w = " (workflow " + strconv.Quote(e.Workflow) + ")"
	}
	return "workflow: the bucket's Quilt workflow would refuse the package" + w + ": " + e.Detail
}

// ExitCode is [exitcode.WorkflowRejected].
func (e *RejectedError) ExitCode() int { return exitcode.WorkflowRejected }

// Unwrap returns [ErrRejected].
func (e *RejectedError) Unwrap() error { return ErrRejected }

var _ exitcode.Coder = (*RejectedError)(nil)

// Getter reads a small object: at most max bytes of bucket/key, an error
// wrapping [store.ErrNotFound] when it does not exist, and errors that
// carry their exit codes otherwise ([store.S3.Get] does all of this).
type Getter func(ctx context.Context, bucket, key string, max int64) ([]byte, error)

// Package is what the check looks at.
type Package struct {
	// Name is the package name, <prefix>/<entry id>.
	Name string
	// Message is the commit message the package is pushed with.
	Message string
	// Metadata is the package metadata as JSON (our entry.json).
	Metadata []byte
}

// Result is what a check found.
type Result struct {
	// Config reports whether the bucket has a workflow config.
	Config bool
	// Workflow is the workflow the package was checked against: the one
	// configured, else the config's default_workflow; "" for none.
	Workflow string
	// EntriesSchema is the workflow's entries_schema, which Check does not
	// check (the files are known only once the archive is extracted):
	// Quilt still does.
	EntriesSchema string
}

// Checker checks packages of one bucket. Its zero value is not usable:
// set Bucket and Get. Safe for concurrent use as far as Get is.
type Checker struct {
	// Bucket holds the config (and, usually, the schemas).
	Bucket string
	// Workflow is the configured workflow; "" or [None] for none.
	Workflow string
	// Get reads the config and the schemas.
	Get Getter
}

// Check checks pkg against the bucket's workflow config, as Quilt's
// packager would for a message naming c.Workflow (or none): without a
// config, only a configured workflow is refused; with one, the workflow
// (c.Workflow, else default_workflow) must exist unless none is required,
// and the package must match its handle_pattern, is_message_required and
// metadata_schema. A refusal is a [*RejectedError]; an error reading the
// config or a schema keeps its exit code (2 for access denied, 4 for
// network errors).
func (c *Checker) Check(ctx context.Context, pkg Package) (Result, error) {
	name := c.Workflow
	if name == None {
		name = ""
	}
	data, err := c.Get(ctx, c.Bucket, ConfigKey, MaxConfigBytes)
	if errors.Is(err, store.ErrNotFound) {
		if name != "" {
			return Result{}, &RejectedError{Reason: ReasonUnknown, Workflow: name,
				Detail: fmt.Sprintf("the workflow is configured but s3://%s/%s does not exist", c.Bucket, ConfigKey)}
		}
		return Result{}, nil
	}
	if err != nil {
		return Result{}, fmt.Errorf("workflow: read the workflow config: %w", err)
	}
	cfg, err := Parse(data)
	if err != nil {
		return Result{Config: true}, &RejectedError{Reason: ReasonConfig, Workflow: name,
			Detail: fmt.Sprintf("s3://%s/%s: %v", c.Bucket, ConfigKey, err)}
	}
	res := Result{Config: true}
	w, name, err := cfg.Resolve(name)
	if err != nil {
		return res, err
	}
	res.Workflow = name
	if name == "" {
		return res, nil // not required, and none given
	}
	res.EntriesSchema = w.EntriesSchema
	// In quilt3's order (get_workflow_validator, then validate): the
	// handle_pattern, the metadata_schema and the entries_schema are
	// loaded, then the message, the name and the metadata are checked.
	var handle *regexp.Regexp
	if w.HandlePattern != "" {
		// Go's RE2 syntax covers the usual patterns; one it cannot
		// compile (a lookaround, which Python takes) is refused here.
		if handle, err = regexp.Compile(w.HandlePattern); err != nil {
			return res, &RejectedError{Reason: ReasonConfig, Workflow: name, Detail: fmt.Sprintf("handle_pattern %q: %v", w.HandlePattern, err)}
		}
	}
	var schema *jsonschema.Schema
	var where string
	if w.MetadataSchema != "" {
		if schema, where, err = c.loadSchema(ctx, cfg, name, w.MetadataSchema); err != nil {
			return res, err
		}
	}
	if w.EntriesSchema != "" {
		// Not checked against the files (known only once the archive is
		// extracted), but an unusable schema makes Quilt refuse every
		// package, which shows now.
		if _, _, err := c.loadSchema(ctx, cfg, name, w.EntriesSchema); err != nil {
			return res, err
		}
	}
	if w.IsMessageRequired && pkg.Message == "" {
		return res, &RejectedError{Reason: ReasonMessage, Workflow: name, Detail: "the workflow requires a commit message and there is none"}
	}
	// Not anchored, as Quilt's re.search.
	if handle != nil && !handle.MatchString(pkg.Name) {
		return res, &RejectedError{Reason: ReasonHandle, Workflow: name, Detail: fmt.Sprintf("package name %s does not match handle_pattern %q", pkg.Name, w.HandlePattern)}
	}
	if schema == nil {
		return res, nil
	}
	meta, err := jsonschema.UnmarshalJSON(bytes.NewReader(pkg.Metadata))
	if err != nil {
		return res, exitcode.Wrap(fmt.Errorf("workflow: the package metadata is not JSON: %w", err), exitcode.BadInput)
	}
	if err := schema.Validate(meta); err != nil {
		return res, &RejectedError{Reason: ReasonMetadata, Workflow: name,
			Detail: fmt.Sprintf("the metadata fails schema %q (%s): %s", w.MetadataSchema, where, validationMessage(err))}
	}
	return res, nil
}

// Config is a parsed workflow config: the parts the check reads.
type Config struct {
	// Version is the config's version (base version of a compound one).
	Version string
	// IsWorkflowRequired is is_workflow_required (default true).
	IsWorkflowRequired bool
	// DefaultWorkflow is default_workflow ("" for none).
	DefaultWorkflow string
	// Workflows are the config's workflows by name.
	Workflows map[string]Workflow
	// Schemas are the schema URLs by id.
	Schemas map[string]string
}

// Workflow is one workflow of a config.
type Workflow struct {
	Name              string `yaml:"name"`
	MetadataSchema    string `yaml:"metadata_schema"`
	EntriesSchema     string `yaml:"entries_schema"`
	HandlePattern     string `yaml:"handle_pattern"`
	IsMessageRequired bool   `yaml:"is_message_required"`
}

type rawConfig struct {
	Version            yaml.Node           `yaml:"version"`
	IsWorkflowRequired *bool               `yaml:"is_workflow_required"`
	DefaultWorkflow    string              `yaml:"default_workflow"`
	Workflows          map[string]Workflow `yaml:"workflows"`
	Schemas            map[string]struct {
		URL string `yaml:"url"`
	} `yaml:"schemas"`
}

// Parse parses a config.yml as Quilt reads it (WorkflowConfig.load): YAML
// ([DecodeYAML]) that passes quilt3's config schema ([ConfigSchema]:
// version a string or {base, catalog}, a non-empty workflows map, each
// with a name, no unknown keys), then a version no newer than Quilt's
// 1.1.0; is_workflow_required defaults to true.
func Parse(data []byte) (*Config, error) {
	node, inst, err := decodeYAML(data)
	if err != nil {
		return nil, fmt.Errorf("not a workflow config: %w", err)
	}
	sch, err := compiledConfigSchema()
	if err != nil {
		return nil, fmt.Errorf("workflow: quilt3's config schema: %w", err)
	}
	if err := sch.Validate(inst); err != nil {
		return nil, fmt.Errorf("fails Quilt's config schema (config-1.schema.json): %s", validationMessage(err))
	}
	var raw rawConfig
	if err := node.Decode(&raw); err != nil {
		return nil, fmt.Errorf("not a workflow config: %w", err)
	}
	version, err := parseVersion(&raw.Version)
	if err != nil {
		return nil, err
	}
	if len(raw.Workflows) == 0 {
		return nil, errors.New("no workflows: a config needs at least one")
	}
	cfg := &Config{Version: version, IsWorkflowRequired: raw.IsWorkflowRequired == nil || *raw.IsWorkflowRequired,
		DefaultWorkflow: raw.DefaultWorkflow, Workflows: raw.Workflows, Schemas: map[string]string{}}
	for name, w := range raw.Workflows {
		if !ValidName(name) {
			return nil, fmt.Errorf("workflow %q: not a workflow name (letters, digits, '_' and '-', at most 64)", name)
		}
		if w.Name == "" {
			return nil, fmt.Errorf("workflow %q: no name", name)
		}
	}
	for id, s := range raw.Schemas {
		if s.URL == "" {
			return nil, fmt.Errorf("schema %q: no url", id)
		}
		cfg.Schemas[id] = s.URL
	}
	return cfg, nil
}

// compiledConfigSchema is [ConfigSchema] applied as quilt3 applies it
// (Draft7Validator without a format checker: "format" is an annotation,
// except "regex", which the library always asserts).
var compiledConfigSchema = sync.OnceValues(func() (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(ConfigSchema))
	if err != nil {
		return nil, err
	}
	comp := newDraft7Compiler()
	if err := comp.AddResource("config-1.schema.json", doc); err != nil {
		return nil, err
	}
	return comp.Compile("config-1.schema.json")
})

// pyBool is what PyYAML's safe_load reads as a boolean (YAML 1.1), beyond
// YAML 1.2's true and false.
var pyBool = regexp.MustCompile(`^(?:yes|Yes|YES|no|No|NO|on|On|ON|off|Off|OFF)$`)

// DecodeYAML decodes a config as PyYAML's safe_load does, as JSON Schema
// takes it: a plain yes/no/on/off value is a boolean (keys stay strings);
// an empty document is null.
func DecodeYAML(data []byte) (any, error) {
	_, inst, err := decodeYAML(data)
	return inst, err
}

func decodeYAML(data []byte) (*yaml.Node, any, error) {
	var node yaml.Node
	if err := yaml.Unmarshal(data, &node); err != nil {
		return nil, nil, err
	}
	pyBools(&node, false)
	var doc any
	if node.Kind != 0 {
		if err := node.Decode(&doc); err != nil {
			return nil, nil, err
		}
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, nil, err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	return &node, inst, err
}

func pyBools(n *yaml.Node, key bool) {
	if n.Kind == yaml.ScalarNode && !key && n.Style == 0 && n.Tag == "!!str" && pyBool.MatchString(n.Value) {
		v := strings.ToLower(n.Value)
		n.Tag, n.Value = "!!bool", strconv.FormatBool(v == "yes" || v == "on")
	}
	for i, c := range n.Content {
		pyBools(c, n.Kind == yaml.MappingNode && i%2 == 0)
	}
}

func parseVersion(n *yaml.Node) (string, error) {
	var v string
	switch n.Kind {
	case yaml.ScalarNode:
		v = n.Value
	case yaml.MappingNode:
		var compound struct {
			Base string `yaml:"base"`
		}
		if err := n.Decode(&compound); err != nil {
			return "", fmt.Errorf("version: %w", err)
		}
		v = compound.Base
	case 0:
		return "", errors.New("no version")
	}
	if v == "" {
		return "", errors.New("no version")
	}
	var got [3]int
	for i, p := range strings.SplitN(v, ".", 3) {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return "", fmt.Errorf("version %q: not a version", v)
		}
		got[i] = n
	}
	if slices.Compare(got[:], supportedVersion[:]) > 0 {
		return "", fmt.Errorf("version %s is newer than Quilt's 1.1.0", v)
	}
	return v, nil
}

// Names returns the config's workflow names, sorted.
func (c *Config) Names() []string {
	names := make([]string, 0, len(c.Workflows))
	for n := range c.Workflows {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Resolve returns the workflow a message naming name ("" for none) is
// checked against, and its name: name itself, else default_workflow; ""
// and no error when none applies and none is required. It refuses an
// unknown workflow, and none when one is required.
func (c *Config) Resolve(name string) (Workflow, string, error) {
	if name == "" {
		name = c.DefaultWorkflow
	}
	if name == "" {
		if c.IsWorkflowRequired {
			return Workflow{}, "", &RejectedError{Reason: ReasonRequired,
				Detail: fmt.Sprintf("the bucket requires a workflow (is_workflow_required, true by default) and none is configured; set quilt-workflow to one of %s", strings.Join(c.Names(), ", "))}
		}
		return Workflow{}, "", nil
	}
	w, ok := c.Workflows[name]
	if !ok {
		return Workflow{}, name, &RejectedError{Reason: ReasonUnknown, Workflow: name,
			Detail: fmt.Sprintf("the config has no such workflow (it has %s)", strings.Join(c.Names(), ", "))}
	}
	return w, name, nil
}

// loadSchema reads and compiles the schema id as Quilt does: an s3:// URL
// (its versionId, if any, is not used: the current object is read), JSON,
// no $ref, no $schema but draft-07's, and format as an annotation only
// (quilt3 validates without a format checker).
func (c *Checker) loadSchema(ctx context.Context, cfg *Config, name, id string) (*jsonschema.Schema, string, error) {
	reject := func(format string, args ...any) error {
		return &RejectedError{Reason: ReasonConfig, Workflow: name, Detail: fmt.Sprintf("schema %q: "+format, append([]any{id}, args...)...)}
	}
	raw, ok := cfg.Schemas[id]
	if !ok {
		return nil, "", reject("not in the config's schemas")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "s3" || u.Host == "" || strings.Trim(u.Path, "/") == "" {
		return nil, raw, reject("url %q: not an s3://bucket/key URL", raw)
	}
	data, err := c.Get(ctx, u.Host, strings.TrimPrefix(u.Path, "/"), MaxSchemaBytes)
	if errors.Is(err, store.ErrNotFound) {
		return nil, raw, reject("%s does not exist", raw)
	}
	if err != nil {
		return nil, raw, fmt.Errorf("workflow: read schema %q: %w", id, err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return nil, raw, reject("%s is not JSON: %v", raw, err)
	}
	if hasRef(doc) {
		return nil, raw, reject("%s uses $ref, which Quilt does not support", raw)
	}
	if m, ok := doc.(map[string]any); ok {
		if s, ok := m["$schema"]; ok && s != draft7 {
			return nil, raw, reject("%s: unsupported $schema %v (Quilt takes draft-07 only)", raw, s)
		}
	}
	comp := newDraft7Compiler()
	loc := "workflow-schema.json"
	if err := comp.AddResource(loc, doc); err != nil {
		return nil, raw, reject("%v", err)
	}
	schema, err := comp.Compile(loc)
	if err != nil {
		return nil, raw, reject("%s is not a valid schema: %v", raw, err)
	}
	return schema, raw, nil
}

// annotationFormats are draft-07's formats, which the check does not
// assert, as quilt3's Draft7Validator does not ("regex" cannot be turned
// off in the library; a metadata value that is not a regex is rare).
var annotationFormats = []string{"date-time", "date", "time", "email", "idn-email", "hostname", "idn-hostname",
	"ipv4", "ipv6", "uri", "uri-reference", "iri", "iri-reference", "uri-template", "json-pointer", "relative-json-pointer"}

// newDraft7Compiler compiles draft-07 schemas as quilt3's Draft7Validator
// applies them: [annotationFormats] not asserted, nothing fetched.
func newDraft7Compiler() *jsonschema.Compiler {
	comp := jsonschema.NewCompiler()
	comp.DefaultDraft(jsonschema.Draft7)
	comp.UseLoader(jsonschema.SchemeURLLoader{}) // nothing is fetched
	for _, f := range annotationFormats {
		comp.RegisterFormat(&jsonschema.Format{Name: f, Validate: func(any) error { return nil }})
	}
	return comp
}

func hasRef(v any) bool {
	switch v := v.(type) {
	case map[string]any:
		if _, ok := v["$ref"]; ok {
			return true
		}
		for _, x := range v {
			if hasRef(x) {
				return true
			}
		}
	case []any:
		return slices.ContainsFunc(v, hasRef)
	}
	return false
}

// validationMessage is a validation error on one line: each failing
// keyword with its place in the metadata.
func validationMessage(err error) string {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return err.Error()
	}
	lines := strings.Split(ve.Error(), "\n")
	if len(lines) > 1 {
		lines = lines[1:] // "jsonschema validation failed with '<url>#'"
	}
	for i, l := range lines {
		lines[i] = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "- "))
	}
	return strings.Join(lines, "; ")
}
