package imagetest

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"benchling-webhook/internal/testkit/testenv"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	// imageVersion is passed as the VERSION build argument; `/job version`
	// and the version label must show it.
	imageVersion = "v0.0.0-imagetest"
	// buildTimeout bounds the whole test. A cold run compiles the
	// dependencies for both architectures (about 30 s each on 2 cores).
	buildTimeout   = 8 * time.Minute
	cleanupTimeout = time.Minute
	nonroot        = 65532
)

// elfMachine is the ELF machine each target architecture must produce.
var elfMachine = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}

// TestImage builds the repository's Dockerfile with buildah, offline:
//   - the bases are assembled from this machine ([assembleBuilder],
//     [assembleBase]) and passed as BUILDER_IMAGE and BASE_IMAGE;
//   - the host's module cache is mounted read-only at /go/pkg/mod with
//     GOPROXY=off, and its build cache at /gocache, so no network is used
//     and a warm run recompiles nothing;
//   - the image for this machine's architecture is run (`/job version`,
//     `/job help`, and a probe for uid, CA certificates and shells);
//   - the other architecture (arm64 on an amd64 host) is cross-built, as
//     `make publish` does, and checked without running it.
//
// It logs the image size; docs/image.md quotes it.
func TestImage(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the image build in -short mode")
	}
	b := newBuildah(t)
	ctx, cancel := context.WithTimeout(t.Context(), buildTimeout)
	defer cancel()
	root, err := testenv.RepoRoot()
	require.NoError(t, err)
	require.FileExists(t, filepath.Join(root, "Dockerfile"))
	g := hostGo(ctx, t)
	native := g.GOHOSTARCH
	cross := "arm64"
	if native == "arm64" {
		cross = "amd64"
	}
	if _, ok := elfMachine[native]; !ok {
		t.Skipf("skipping: the image test knows amd64 and arm64 hosts, not %s", native)
	}

	// The build runs with GOPROXY=off against the host's module cache, so
	// fill that first (a no-op when `go build` has already run here).
	dl := exec.CommandContext(ctx, "go", "mod", "download")
	dl.Dir = root
	if out, err := dl.CombinedOutput(); err != nil {
		t.Fatalf("go mod download: %v\n%s", err, out)
	}

	start := time.Now()
	assembleBuilder(ctx, t, b, g)
	assembleBase(ctx, t, b, native)
	assembleBase(ctx, t, b, cross)
	t.Logf("bases assembled from %s (%s) in %s", g.GOROOT, g.GOVERSION, time.Since(start).Round(time.Millisecond))

	t.Run("linux/"+native, func(t *testing.T) {
		img := buildJob(ctx, t, b, g, root, native)
		checkImage(t, img, native)
		runImage(ctx, t, b, native)
	})
	t.Run("linux/"+cross, func(t *testing.T) {
		img := buildJob(ctx, t, b, g, root, cross)
		checkImage(t, img, cross)
	})
}

// buildJob builds the Dockerfile for linux/goarch and reads the result
// back through an OCI layout (compressed as a registry would store it).
func buildJob(ctx context.Context, t *testing.T, b *buildah, g goEnv, root, goarch string) *ociImage {
	t.Helper()
	start := time.Now()
	b.run(ctx, t, "build", "--pull=never", "--isolation", "chroot",
		"--platform", "linux/"+goarch,
		// buildah 1.28 does not expand these two in FROM by itself.
		"--build-arg", "BUILDPLATFORM=linux/"+g.GOHOSTARCH,
		"--build-arg", "TARGETPLATFORM=linux/"+goarch,
		"--build-arg", "BUILDER_IMAGE="+builderRef,
		"--build-arg", "BASE_IMAGE="+baseRef+goarch,
		"--build-arg", "VERSION="+imageVersion,
		"--volume", g.GOMODCACHE+":/go/pkg/mod:ro",
		"--volume", g.GOCACHE+":/gocache",
		"-t", jobRef+goarch,
		"-f", filepath.Join(root, "Dockerfile"),
		root)
	built := time.Since(start)
	dir := filepath.Join(t.TempDir(), "oci")
	b.run(ctx, t, "push", "-q", jobRef+goarch, "oci:"+dir+":job")
	img, err := readOCILayout(dir)
	require.NoError(t, err)
	t.Logf("built linux/%s in %s", goarch, built.Round(time.Millisecond))
	return img
}

// checkImage checks what the Dockerfile promises: metadata, a single
// static binary for the right architecture at /job owned by root, and
// nothing added to the base but that binary.
func checkImage(t *testing.T, img *ociImage, goarch string) {
	t.Helper()
	c := img.Config
	assert.Equal(t, "linux", c.OS)
	assert.Equal(t, goarch, c.Architecture)
	assert.Equal(t, "65532:65532", c.Config.User)
	assert.Equal(t, []string{"/job"}, c.Config.Entrypoint)
	assert.Equal(t, []string{"reconcile"}, c.Config.Cmd)
	assert.Equal(t, "https://github.com/quiltdata/benchling-webhook", c.Config.Labels["org.opencontainers.image.source"])
	assert.Equal(t, "Apache-2.0", c.Config.Labels["org.opencontainers.image.licenses"])
	assert.Equal(t, imageVersion, c.Config.Labels["org.opencontainers.image.version"])

	files := img.files()
	var names []string
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	// The test base has exactly the certificates and passwd/group; so no
	// shell, and the Dockerfile adds only /job.
	assert.Equal(t, []string{"etc/group", "etc/passwd", caBundle, "job"}, names, "files in the image")
	require.NotEmpty(t, img.Layers)
	top := img.Layers[len(img.Layers)-1]
	var added []string
	for _, e := range top.Entries {
		if e.Type != tar.TypeDir {
			added = append(added, e.Name)
		}
	}
	assert.Equal(t, []string{"job"}, added, "files the Dockerfile adds to the base")

	job, ok := files["job"]
	require.True(t, ok, "/job missing")
	assert.Equal(t, byte(tar.TypeReg), job.Type)
	assert.Equal(t, int64(0o755), job.Mode&0o7777, "/job mode")
	assert.Equal(t, 0, job.UID, "/job owner: root, so the job user cannot replace it")
	f, err := elf.NewFile(bytes.NewReader(job.Data))
	require.NoError(t, err, "/job is not ELF")
	defer f.Close()
	assert.Equal(t, elfMachine[goarch], f.Machine, "/job ELF machine")
	for _, p := range f.Progs {
		assert.NotEqual(t, elf.PT_INTERP, p.Type, "/job is dynamically linked")
	}
	assert.Nil(t, f.Section(".symtab"), "/job has a symbol table: -s missing from -ldflags")

	compressed, unpacked := img.size()
	const mib = 1 << 20
	t.Logf("image size linux/%s: %.1f MiB compressed (job layer %.1f MiB + test base %.2f MiB), %.1f MiB unpacked; /job is %.1f MiB",
		goarch, float64(compressed)/mib, float64(top.Size)/mib, float64(compressed-top.Size)/mib,
		float64(unpacked)/mib, float64(len(job.Data))/mib)
}

// probeReport is what testdata/probe prints.
type probeReport struct {
	UID       int    `json:"uid"`
	GID       int    `json:"gid"`
	Certs     int    `json:"certs"`
	SystemErr string `json:"systemPoolError"`
	Shell     string `json:"shell"`
}

// runImage runs the image built for this machine: the binary's version and
// help, then the probe (mounted read-only at /probe) for the user the job
// runs as, the CA certificates it can load, and the absence of a shell.
func runImage(ctx context.Context, t *testing.T, b *buildah, goarch string) {
	t.Helper()
	ctr := b.run(ctx, t, "from", "--pull=never", "--name", "bw-imagetest-run", jobRef+goarch)
	run := func(args ...string) (string, error) {
		return b.output(ctx, append([]string{"run", "--isolation", "chroot"}, args...)...)
	}

	out, err := run(ctr, "--", "/job", "version")
	require.NoError(t, err)
	assert.Equal(t, imageVersion, out, "/job version")
	out, err = run(ctr, "--", "/job", "help")
	require.NoError(t, err)
	assert.Contains(t, out, "Usage:", "/job help")
	_, err = run(ctr, "--", "/bin/sh", "-c", "true")
	assert.Error(t, err, "/bin/sh ran in the image")

	probeDir := t.TempDir()
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", filepath.Join(probeDir, "probe"), "./testdata/probe")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build probe: %v\n%s", err, out)
	}
	out, err = run("--volume", probeDir+":/probe:ro", ctr, "--", "/probe/probe")
	require.NoError(t, err)
	var r probeReport
	require.NoError(t, json.Unmarshal([]byte(out), &r), "probe output %q", out)
	assert.Equal(t, nonroot, r.UID, "uid the job runs as")
	assert.Equal(t, nonroot, r.GID, "gid the job runs as")
	assert.Empty(t, r.SystemErr, "x509.SystemCertPool")
	assert.Positive(t, r.Certs, "CA certificates in /%s", caBundle)
	assert.Empty(t, r.Shell, "a shell is on PATH")
	t.Logf("ran linux/%s: /job version %q, uid %d, %d CA certificates, no shell", goarch, imageVersion, r.UID, r.Certs)
}

// TestPublishNeedsSwitch checks that `make publish` (scripts/image.sh
// publish) refuses to build or push anything unless PUBLISH=1.
func TestPublishNeedsSwitch(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("skipping: bash not found")
	}
	root, err := testenv.RepoRoot()
	require.NoError(t, err)
	script := filepath.Join(root, "scripts", "image.sh")
	for _, publish := range []string{"", "0", "yes"} {
		t.Run("PUBLISH="+publish, func(t *testing.T) {
			env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "PUBLISH=") })
			env = append(env, "IMAGE_REPO=registry.invalid/benchling", "IMAGE_TAG=v0", "VERSION=v0",
				// Nothing may run: a docker or buildah call would fail here.
				"IMAGE_ENGINE=none")
			if publish != "" {
				env = append(env, "PUBLISH="+publish)
			}
			cmd := exec.CommandContext(t.Context(), bash, script, "publish")
			cmd.Env = env
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			require.True(t, errors.As(err, &exit), "scripts/image.sh publish: err %v, output %s", err, out)
			assert.Equal(t, 2, exit.ExitCode())
			assert.Contains(t, string(out), "PUBLISH=1")
		})
	}
}
