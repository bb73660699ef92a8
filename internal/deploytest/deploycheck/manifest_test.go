package deploycheck

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// manifestSchemas maps a manifest type to its schema in testdata.
var manifestSchemas = map[string]string{
	"Scheduled Job": "scheduled-job.schema.json",
	"Environment":   "environment.schema.json",
}

var (
	schemaOnce sync.Once
	schemas    map[string]*jsonschema.Schema
	schemaErr  error
)

// schemaFor returns the compiled schema of a manifest type.
func schemaFor(t testing.TB, typ string) *jsonschema.Schema {
	t.Helper()
	schemaOnce.Do(func() {
		schemas = map[string]*jsonschema.Schema{}
		c := jsonschema.NewCompiler()
		c.DefaultDraft(jsonschema.Draft2020)
		for typ, file := range manifestSchemas {
			f, err := os.Open(filepath.Join("testdata", file))
			if err != nil {
				schemaErr = err
				return
			}
			doc, err := jsonschema.UnmarshalJSON(f)
			_ = f.Close()
			if err != nil {
				schemaErr = fmt.Errorf("%s: %w", file, err)
				return
			}
			if err := c.AddResource(file, doc); err != nil {
				schemaErr = err
				return
			}
			if schemas[typ], err = c.Compile(file); err != nil {
				schemaErr = err
				return
			}
		}
	})
	require.NoError(t, schemaErr)
	s, ok := schemas[typ]
	require.True(t, ok, "no schema for manifest type %q", typ)
	return s
}

// readYAML decodes a YAML file into plain values (maps, lists, scalars).
func readYAML(t testing.TB, path string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, yaml.Unmarshal(data, &m), path)
	require.NotNil(t, m, "%s is empty", path)
	return m
}

// validate validates a decoded manifest against the schema of typ.
func validate(t testing.TB, typ string, m map[string]any) error {
	t.Helper()
	data, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("not JSON-compatible: %w", err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	require.NoError(t, err)
	return schemaFor(t, typ).Validate(inst)
}

// merge returns base with override applied the way Copilot applies an
// environment's overrides: maps merge key by key, anything else replaces.
func merge(base, override map[string]any) map[string]any {
	out := make(map[string]any, len(base))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range override {
		if bm, ok := out[k].(map[string]any); ok {
			if om, ok := v.(map[string]any); ok {
				out[k] = merge(bm, om)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// workspace is the layout Copilot reads.
type workspace struct {
	root         string
	app          string
	environments []string          // names of copilot/environments/<name>/manifest.yml
	workloads    map[string]string // workload name → manifest path
}

func readWorkspace(t testing.TB, root string) workspace {
	t.Helper()
	ws := workspace{root: root, workloads: map[string]string{}}
	cfg := readYAML(t, filepath.Join(root, "copilot", ".workspace"))
	ws.app, _ = cfg["application"].(string)
	envDirs, err := os.ReadDir(filepath.Join(root, "copilot", "environments"))
	require.NoError(t, err)
	for _, d := range envDirs {
		if _, err := os.Stat(filepath.Join(root, "copilot", "environments", d.Name(), "manifest.yml")); err == nil {
			ws.environments = append(ws.environments, d.Name())
		}
	}
	dirs, err := os.ReadDir(filepath.Join(root, "copilot"))
	require.NoError(t, err)
	for _, d := range dirs {
		p := filepath.Join(root, "copilot", d.Name(), "manifest.yml")
		if d.IsDir() && d.Name() != "environments" {
			if _, err := os.Stat(p); err == nil {
				ws.workloads[d.Name()] = p
			}
		}
	}
	sort.Strings(ws.environments)
	return ws
}

// checkManifest validates one manifest (at dir/manifest.yml) by its type:
// against the schema, its name against its directory, and for a job every
// environment override (the name must be an environment, the merged
// manifest valid) and the Dockerfile it builds.
func checkManifest(t testing.TB, ws workspace, dir string, m map[string]any) []error {
	t.Helper()
	typ, _ := m["type"].(string)
	if _, ok := manifestSchemas[typ]; !ok {
		return []error{fmt.Errorf("%s: type %q has no schema here", dir, typ)}
	}
	var errs []error
	if err := validate(t, typ, m); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", dir, err))
	}
	if name, _ := m["name"].(string); name != filepath.Base(dir) {
		errs = append(errs, fmt.Errorf("%s: name %q is not its directory's", dir, name))
	}
	if typ != "Scheduled Job" {
		return errs
	}
	overrides := asMap(m["environments"])
	for _, env := range sortedKeys(overrides) {
		if !slices.Contains(ws.environments, env) {
			errs = append(errs, fmt.Errorf("%s: environments.%s: no such environment (have %v)", dir, env, ws.environments))
			continue
		}
		merged := merge(m, asMap(overrides[env]))
		delete(merged, "environments")
		if err := validate(t, typ, merged); err != nil {
			errs = append(errs, fmt.Errorf("%s: as deployed to %s: %w", dir, env, err))
		}
	}
	for _, env := range append([]string{""}, ws.environments...) {
		eff := m
		if env != "" {
			eff = merge(m, asMap(overrides[env]))
		}
		if err := checkDockerfile(ws.root, asMap(eff["image"])); err != nil {
			errs = append(errs, fmt.Errorf("%s (%s): %w", dir, env, err))
		}
	}
	return errs
}

// checkDockerfile checks that an image built from a Dockerfile names one
// that exists; paths are relative to the workspace root.
func checkDockerfile(root string, image map[string]any) error {
	var dockerfile, context string
	switch b := image["build"].(type) {
	case nil:
		return nil
	case string:
		dockerfile = b
	case map[string]any:
		dockerfile, _ = b["dockerfile"].(string)
		context, _ = b["context"].(string)
		if dockerfile == "" {
			dockerfile = filepath.Join(context, "Dockerfile")
		}
	}
	if _, err := os.Stat(filepath.Join(root, dockerfile)); err != nil {
		return fmt.Errorf("image.build: %w", err)
	}
	if context != "" {
		if fi, err := os.Stat(filepath.Join(root, context)); err != nil || !fi.IsDir() {
			return fmt.Errorf("image.build.context %q is not a directory", context)
		}
	}
	return nil
}

// TestManifests checks every manifest under copilot/ and the workspace.
func TestManifests(t *testing.T) {
	root := repoRoot(t)
	ws := readWorkspace(t, root)
	require.Equal(t, appName, ws.app, "copilot/.workspace names the application")
	require.NotEmpty(t, ws.environments)
	require.Contains(t, ws.workloads, jobName)

	n := 0
	err := filepath.WalkDir(filepath.Join(root, "copilot"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "manifest.yml" {
			return err
		}
		n++
		t.Run(rel(t, path), func(t *testing.T) {
			require.Empty(t, checkManifest(t, ws, filepath.Dir(path), readYAML(t, path)))
		})
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, len(ws.environments)+len(ws.workloads), n)
}

// TestManifestsCatch breaks the manifests and requires the check to fail
// with the broken field named.
func TestManifestsCatch(t *testing.T) {
	root := repoRoot(t)
	ws := readWorkspace(t, root)
	job := filepath.Join(root, "copilot", jobName)
	dev := filepath.Join(root, "copilot", "environments", "dev")
	prod := filepath.Join(root, "copilot", "environments", "prod")
	override := func(env string, m map[string]any) map[string]any {
		envs := asMap(m["environments"])
		if envs == nil {
			envs = map[string]any{}
			m["environments"] = envs
		}
		if asMap(envs[env]) == nil {
			envs[env] = map[string]any{}
		}
		return asMap(envs[env])
	}
	for name, c := range map[string]struct {
		dir    string
		mutate func(m map[string]any)
		want   string
	}{
		"unknown key":                 {job, func(m map[string]any) { m["timeout_seconds"] = 60 }, "timeout_seconds"},
		"unknown nested key":          {job, func(m map[string]any) { asMap(m["storage"])["size"] = 50 }, "size"},
		"cpu 1000":                    {job, func(m map[string]any) { m["cpu"] = 1000 }, "/cpu"},
		"memory too small for cpu":    {job, func(m map[string]any) { m["cpu"], m["memory"] = 1024, 1024 }, "/memory"},
		"memory too large for cpu":    {job, func(m map[string]any) { m["cpu"], m["memory"] = 256, 4096 }, "/memory"},
		"memory off the 1 GiB grid":   {job, func(m map[string]any) { m["cpu"], m["memory"] = 2048, 5000 }, "/memory"},
		"retries -1":                  {job, func(m map[string]any) { m["retries"] = -1 }, "/retries"},
		"timeout without unit":        {job, func(m map[string]any) { m["timeout"] = "90" }, "/timeout"},
		"timeout in milliseconds":     {job, func(m map[string]any) { m["timeout"] = "500ms" }, "/timeout"},
		"schedule in prose":           {job, func(m map[string]any) { asMap(m["on"])["schedule"] = "every day" }, "/on/schedule"},
		"platform linux/386":          {job, func(m map[string]any) { m["platform"] = "linux/386" }, "/platform"},
		"ephemeral storage 10 GiB":    {job, func(m map[string]any) { asMap(m["storage"])["ephemeral"] = 10 }, "/storage/ephemeral"},
		"build and location":          {job, func(m map[string]any) { asMap(m["image"])["location"] = "x:1" }, "/image"},
		"secret of no known form":     {job, func(m map[string]any) { m["secrets"] = map[string]any{"S": map[string]any{"ssm": "x"}} }, "/secrets/S"},
		"missing Dockerfile":          {job, func(m map[string]any) { asMap(asMap(m["image"])["build"])["dockerfile"] = "Nope" }, "image.build"},
		"wrong name":                  {job, func(m map[string]any) { m["name"] = "job" }, "not its directory's"},
		"override of a missing env":   {job, func(m map[string]any) { override("staging", m)["cpu"] = 512 }, "environments.staging: no such environment"},
		"unknown key in an override":  {job, func(m map[string]any) { override("prod", m)["replicas"] = 2 }, "replicas"},
		"override breaks cpu/memory":  {job, func(m map[string]any) { override("prod", m)["cpu"] = 4096 }, "as deployed to prod"},
		"override type is not a type": {job, func(m map[string]any) { override("dev", m)["type"] = "Backend Service" }, "/environments/dev"},
		"env unknown key":             {dev, func(m map[string]any) { m["vpc"] = map[string]any{} }, "vpc"},
		"env unknown nested key":      {dev, func(m map[string]any) { asMap(m["observability"])["insights"] = true }, "insights"},
		"env flow log retention 2": {prod, func(m map[string]any) {
			m["network"] = map[string]any{"vpc": map[string]any{"flow_logs": map[string]any{"retention": 2}}}
		}, "flow_logs"},
		"env VPC id and cidr": {prod, func(m map[string]any) {
			m["network"] = map[string]any{"vpc": map[string]any{"id": "vpc-1a", "cidr": "10.0.0.0/16"}}
		}, "/network/vpc"},
		"env wrong type": {dev, func(m map[string]any) { m["type"] = "Environments" }, "has no schema"},
	} {
		t.Run(name, func(t *testing.T) {
			m := readYAML(t, filepath.Join(c.dir, "manifest.yml"))
			c.mutate(m)
			errs := checkManifest(t, ws, c.dir, m)
			require.NotEmpty(t, errs, "the check missed it")
			require.True(t, slices.ContainsFunc(errs, func(err error) bool { return strings.Contains(err.Error(), c.want) }),
				"want an error mentioning %q, got %v", c.want, errs)
		})
	}
}

// TestWorkspaceCatches: a workspace naming another application fails.
func TestWorkspaceCatches(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "copilot", "environments"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "copilot", ".workspace"), []byte("application: quilt-benchling\n"), 0o644))
	require.NotEqual(t, appName, readWorkspace(t, dir).app)
}

// TestJobSchemaKeys keeps the job schema's list of allowed keys (which
// rejects unknown ones) equal to the fields it describes.
func TestJobSchemaKeys(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", manifestSchemas["Scheduled Job"]))
	require.NoError(t, err)
	var s struct {
		Defs struct {
			JobConfig struct{ Properties map[string]any }
			JobKeys   struct{ Enum []string }
		} `json:"$defs"`
	}
	require.NoError(t, json.Unmarshal(data, &s))
	keys := slices.Clone(s.Defs.JobKeys.Enum)
	sort.Strings(keys)
	require.Equal(t, sortedKeys(s.Defs.JobConfig.Properties), keys)
}
