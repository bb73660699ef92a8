package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"time"

	"benchling-webhook/internal/testkit/samplezip"
)

// preset is one sample export the benchmarks run on.
type preset struct {
	name string // the export=<name> part of the benchmark name and the cache file name
	spec samplezip.Spec
}

// presets are the exports, in the order they are benchmarked.
var presets = []preset{
	{name: "medium", spec: samplezip.Medium()},
	{name: "many-small", spec: samplezip.ManySmall()},
	{name: "huge", spec: samplezip.Huge()},
}

// export is a generated sample archive on disk and what it holds.
type export struct {
	name     string
	path     string // absolute path of the ZIP
	manifest samplezip.Manifest
}

// sidecar is the JSON written next to a cached archive. The archive is
// reused only if the sidecar's spec and generator match the current ones
// and the file still has the size the manifest records.
type sidecar struct {
	Preset    string             `json:"preset"`
	Spec      samplezip.Spec     `json:"spec"`
	Generator string             `json:"generator"` // compress module version: it decides the bytes
	Manifest  samplezip.Manifest `json:"manifest"`
}

// loadExport returns the cached archive for p in dir, generating it (and
// its sidecar) when it is missing or stale. logf reports what it did.
func loadExport(dir string, p preset, logf func(string, ...any)) (*export, error) {
	zipPath := filepath.Join(dir, p.name+".zip")
	metaPath := filepath.Join(dir, p.name+".manifest.json")
	want := sidecar{Preset: p.name, Spec: p.spec, Generator: generatorVersion()}

	if m, ok := cachedManifest(zipPath, metaPath, want); ok {
		logf("bench: reusing %s (%d entries, %d bytes)", zipPath, len(m.Entries), m.ArchiveSize)
		return &export{name: p.name, path: zipPath, manifest: m}, nil
	}

	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("generate %s: %w", p.name, err)
	}
	start := time.Now()
	tmp := zipPath + ".tmp"
	m, err := samplezip.WriteFile(tmp, p.spec)
	if err != nil {
		_ = os.Remove(tmp) // already failing
		return nil, fmt.Errorf("generate %s: %w", p.name, err)
	}
	if err := os.Rename(tmp, zipPath); err != nil {
		return nil, fmt.Errorf("generate %s: %w", p.name, err)
	}
	want.Manifest = m
	data, err := json.Marshal(want)
	if err != nil {
		return nil, fmt.Errorf("generate %s: encode manifest: %w", p.name, err)
	}
	if err := os.WriteFile(metaPath, data, 0o644); err != nil {
		return nil, fmt.Errorf("generate %s: %w", p.name, err)
	}
	logf("bench: generated %s in %s (%d entries, %d bytes, %d uncompressed)",
		zipPath, time.Since(start).Round(time.Millisecond), len(m.Entries), m.ArchiveSize, m.TotalUncompressed)
	return &export{name: p.name, path: zipPath, manifest: m}, nil
}

// cachedManifest returns the manifest from metaPath if the sidecar matches
// want and zipPath has the recorded size.
func cachedManifest(zipPath, metaPath string, want sidecar) (samplezip.Manifest, bool) {
	data, err := os.ReadFile(metaPath)
	if err != nil {
		return samplezip.Manifest{}, false
	}
	var got sidecar
	if err := json.Unmarshal(data, &got); err != nil {
		return samplezip.Manifest{}, false
	}
	if got.Preset != want.Preset || got.Generator != want.Generator || !reflect.DeepEqual(got.Spec, want.Spec) {
		return samplezip.Manifest{}, false
	}
	fi, err := os.Stat(zipPath)
	if err != nil || fi.Size() != got.Manifest.ArchiveSize || len(got.Manifest.Entries) == 0 {
		return samplezip.Manifest{}, false
	}
	return got.Manifest, true
}

// generatorVersion names the klauspost/compress version this binary was
// built with: samplezip's output is only stable for one version.
func generatorVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	for _, d := range bi.Deps {
		if d.Path == "github.com/klauspost/compress" {
			if d.Replace != nil {
				d = d.Replace
			}
			return d.Path + "@" + d.Version
		}
	}
	return "unknown"
}
