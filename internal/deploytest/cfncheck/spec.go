package cfncheck

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"benchling-webhook/internal/testkit/testenv"
)

// specScript exports the spec from @aws-cdk/aws-service-spec as JSON.
//
//go:embed spec.cjs
var specScript string

// ErrNoNode means the Node tools (node and @aws-cdk/aws-service-spec under
// tools/node) are not installed; `make tools` installs them. It is
// [testenv.ErrNoNode].
var ErrNoNode = testenv.ErrNoNode

// Spec is the CloudFormation resource specification as published in
// @aws-cdk/aws-service-spec (which CDK generates its L1 constructs from and
// which is rebuilt weekly from the CloudFormation registry schemas).
// A Spec is immutable and safe for concurrent use.
type Spec struct {
	// Version is the @aws-cdk/aws-service-spec package version.
	Version   string                   `json:"version"`
	Resources map[string]*specResource `json:"resources"`
	Types     map[string]*specTypeDef  `json:"types"`
}

type specResource struct {
	Properties map[string]*specProp `json:"properties"`
	Attributes []string             `json:"attributes"`
}

type specTypeDef struct {
	Name       string               `json:"name"`
	Properties map[string]*specProp `json:"properties"`
}

type specProp struct {
	Type     *specType `json:"type"`
	Required bool      `json:"required"`
}

// specType is a property type: a primitive (string, integer, number,
// boolean, json, date-time, null, tag), ref (a type definition), array,
// map or union.
type specType struct {
	Kind          string      `json:"type"`
	Ref           string      `json:"ref"`
	Element       *specType   `json:"element"`
	Types         []*specType `json:"types"`
	AllowedValues []any       `json:"allowedValues"`
}

// SpecOptions says where the Node tools are. The zero value finds them
// under tools/node in the repository root ([testenv.NodeTools]).
type SpecOptions struct {
	// NodeModules is the node_modules directory holding
	// @aws-cdk/aws-service-spec (default: <repo>/tools/node/node_modules).
	NodeModules string
	// Node is the node binary (default: NodeModules/.bin/node).
	Node string
}

// LoadSpec runs the embedded Node script to export the resource
// specification and decodes it. It takes about half a second; load once
// and reuse the Spec for many templates. It returns an error wrapping
// [ErrNoNode] if node or the spec package is missing.
func LoadSpec(ctx context.Context, opts SpecOptions) (*Spec, error) {
	if opts.NodeModules == "" {
		n, err := testenv.NodeTools("")
		if err != nil {
			return nil, fmt.Errorf("cfncheck: %w", err)
		}
		opts.NodeModules = n.Modules
	}
	if opts.Node == "" {
		opts.Node = filepath.Join(opts.NodeModules, ".bin", "node")
	}
	for _, p := range []string{opts.Node, filepath.Join(opts.NodeModules, "@aws-cdk", "aws-service-spec", "db.json.gz")} {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("%w: %s missing", ErrNoNode, p)
		}
	}
	cmd := exec.CommandContext(ctx, opts.Node, "-e", specScript)
	cmd.Env = append(os.Environ(), "CFNCHECK_NODE_MODULES="+opts.NodeModules, "NODE_OPTIONS=")
	cmd.SysProcAttr = testenv.ChildProcAttr()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("cfncheck: export spec with %s: %w: %s", opts.Node, err, strings.TrimSpace(stderr.String()))
	}
	var s Spec
	if err := json.Unmarshal(out, &s); err != nil {
		return nil, fmt.Errorf("cfncheck: decode spec: %w", err)
	}
	if len(s.Resources) == 0 {
		return nil, fmt.Errorf("cfncheck: spec %s has no resources", s.Version)
	}
	return &s, nil
}

// Attributes returns the Fn::GetAtt attribute names of a resource type, and
// false if the spec does not know the type.
func (s *Spec) Attributes(resourceType string) ([]string, bool) {
	r, ok := s.Resources[resourceType]
	if !ok {
		return nil, false
	}
	return append([]string(nil), r.Attributes...), true
}

// Validate loads the template at path and the spec, and checks the one
// against the other; see [Spec.Check]. The error is non-nil only if the
// template cannot be parsed or the spec cannot be loaded. To check many
// templates, call [LoadSpec] once and [Spec.Check] for each.
func Validate(ctx context.Context, path string) ([]Problem, error) {
	t, err := Load(path)
	if err != nil {
		return nil, err
	}
	s, err := LoadSpec(ctx, SpecOptions{})
	if err != nil {
		return nil, err
	}
	return s.Check(t), nil
}
