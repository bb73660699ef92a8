package imagetest

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"benchling-webhook/internal/testkit/testenv"
)

// buildah runs the buildah CLI against a private store: vfs storage (no
// overlay mounts, works inside a container) under a test temp dir, with
// TMPDIR there too, so buildah's cache mounts and big temp files go away
// with the test.
type buildah struct {
	bin    string
	global []string // --root, --runroot, --storage-driver
	env    []string
}

// newBuildah finds buildah and sets up its store in t's temp dir. It skips
// the test (or fails it under BW_REQUIRE_IMAGE=1, which .ci/run sets, or
// CI=true: [testenv.Required]) when buildah is missing
// or the test is not root: vfs storage with chroot isolation needs root,
// and rootless buildah needs subuid ranges this test does not set up.
func newBuildah(t *testing.T) *buildah {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skipf("skipping: image builds need Linux, not %s", runtime.GOOS)
	}
	bin, err := exec.LookPath("buildah")
	if err != nil {
		missing(t, "buildah not found: install it with `apt-get install -y buildah` (Debian 12: buildah 1.28)")
	}
	if os.Geteuid() != 0 {
		missing(t, "the image test runs buildah with vfs storage and chroot isolation, which needs root")
	}
	dir := t.TempDir()
	b := &buildah{
		bin: bin,
		global: []string{
			"--root", filepath.Join(dir, "root"),
			"--runroot", filepath.Join(dir, "runroot"),
			"--storage-driver", "vfs",
		},
	}
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	// buildah reads STORAGE_DRIVER, BUILDAH_ISOLATION and the like from the
	// environment; start from the test's and pin what matters.
	b.env = append(os.Environ(), "TMPDIR="+tmp, "BUILDAH_ISOLATION=chroot")
	// Runs before t.TempDir removes dir: drop containers first, so no
	// working container outlives the test. vfs layers are plain
	// directories, so removing the tree frees the rest.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		if out, err := b.cmd(ctx, "rm", "--all").CombinedOutput(); err != nil {
			t.Logf("buildah rm --all: %v\n%s", err, out)
		}
	})
	return b
}

// missing skips t, or fails it where the image test must run. The
// requirement is BW_REQUIRE_IMAGE, not BW_REQUIRE_S3 (which `make test`
// always sets), so `make test` without root skips the image build.
func missing(t *testing.T, msg string) {
	t.Helper()
	testenv.Need(t, testenv.EnvRequireImage, testenv.MissingError(msg))
}

func (b *buildah) cmd(ctx context.Context, args ...string) *exec.Cmd {
	c := exec.CommandContext(ctx, b.bin, append(append([]string{}, b.global...), args...)...)
	c.Env = b.env
	return c
}

// run runs buildah and returns its trimmed stdout; on failure it fails the
// test with the tail of stdout and stderr.
func (b *buildah) run(ctx context.Context, t *testing.T, args ...string) string {
	t.Helper()
	out, err := b.output(ctx, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// output is run without the test: it returns an error that carries the
// command's output.
func (b *buildah) output(ctx context.Context, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	c := b.cmd(ctx, args...)
	c.Stdout, c.Stderr = &stdout, &stderr
	if err := c.Run(); err != nil {
		return "", fmt.Errorf("buildah %s: %w\nstdout: %s\nstderr: %s",
			strings.Join(args, " "), err, tail(stdout.String()), tail(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

func tail(s string) string {
	const max = 6000
	if len(s) > max {
		return "…" + s[len(s)-max:]
	}
	return s
}

// goEnv is the part of `go env` the test uses.
type goEnv struct {
	GOROOT, GOMODCACHE, GOCACHE, GOHOSTARCH, GOVERSION string
}

func hostGo(ctx context.Context, t *testing.T) goEnv {
	t.Helper()
	out, err := exec.CommandContext(ctx, "go", "env", "-json", "GOROOT", "GOMODCACHE", "GOCACHE", "GOHOSTARCH", "GOVERSION").Output()
	if err != nil {
		t.Fatalf("go env: %v", err)
	}
	var g goEnv
	if err := json.Unmarshal(out, &g); err != nil {
		t.Fatalf("go env: %v", err)
	}
	return g
}

// Image names in the test's private store.
const (
	builderRef = "localhost/bw-imagetest/builder:go"
	baseRef    = "localhost/bw-imagetest/base:" // + GOARCH
	jobRef     = "localhost/bw-imagetest/job:"  // + GOARCH
)

// assembleBuilder commits the builder base: the host's Go toolchain at
// /usr/local/go (the go command, the compiler/linker/assembler in
// pkg/tool, and the standard library's source without tests and
// testdata), /bin/sh with the shared
// libraries it needs (RUN lines go through it), and an environment that
// keeps the build offline: GOPROXY=off and GOTOOLCHAIN=local. GOCACHE
// points at /gocache, where the test mounts the host's build cache.
// The module cache is mounted at /go/pkg/mod (GOPATH=/go).
func assembleBuilder(ctx context.Context, t *testing.T, b *buildah, g goEnv) {
	t.Helper()
	ctr := b.run(ctx, t, "from", "--pull=never", "--name", "bw-imagetest-builder", "scratch")
	root := b.run(ctx, t, "mount", ctr)
	goroot := filepath.Join(root, "usr", "local", "go")
	tools := filepath.Join("pkg", "tool", "linux_"+g.GOHOSTARCH)
	steps := []struct {
		src, dst string
		skip     func(rel string, d fs.DirEntry) bool
	}{
		{filepath.Join(g.GOROOT, "bin", "go"), filepath.Join(goroot, "bin", "go"), nil},
		{filepath.Join(g.GOROOT, "go.env"), filepath.Join(goroot, "go.env"), nil},
		{filepath.Join(g.GOROOT, "VERSION"), filepath.Join(goroot, "VERSION"), nil},
		{filepath.Join(g.GOROOT, tools), filepath.Join(goroot, tools), nil},
		{filepath.Join(g.GOROOT, "pkg", "include"), filepath.Join(goroot, "pkg", "include"), nil},
		{filepath.Join(g.GOROOT, "src"), filepath.Join(goroot, "src"), func(rel string, d fs.DirEntry) bool {
			// src/cmd is the toolchain's own source, which builds of other
			// programs never read (47 MB of the 160).
			return rel == "cmd" || (d.IsDir() && d.Name() == "testdata") || strings.HasSuffix(rel, "_test.go")
		}},
	}
	for _, s := range steps {
		if err := copyTree(s.src, s.dst, s.skip); err != nil {
			t.Fatalf("assemble builder: %v", err)
		}
	}
	shell, err := filepath.EvalSymlinks("/bin/sh")
	if err != nil {
		t.Fatalf("assemble builder: %v", err)
	}
	if err := copyFile(shell, filepath.Join(root, "bin", "sh")); err != nil {
		t.Fatalf("assemble builder: %v", err)
	}
	// The go command is static in the official distributions; a distro
	// build may not be, so copy whatever loader and libraries either needs.
	for _, exe := range []string{shell, filepath.Join(g.GOROOT, "bin", "go")} {
		libs, err := sharedLibs(ctx, exe)
		if err != nil {
			t.Fatalf("assemble builder: %v", err)
		}
		for _, lib := range libs {
			if err := copyFile(lib, filepath.Join(root, lib)); err != nil {
				t.Fatalf("assemble builder: %v", err)
			}
		}
	}
	for _, d := range []struct {
		path string
		mode fs.FileMode
	}{{"tmp", 0o1777}, {"go", 0o755}, {"gocache", 0o755}, {"root", 0o700}} {
		p := filepath.Join(root, d.path)
		if err := os.MkdirAll(p, d.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, d.mode); err != nil {
			t.Fatal(err)
		}
	}
	b.run(ctx, t, "config", "--os", "linux", "--arch", g.GOHOSTARCH,
		"--env", "PATH=/usr/local/go/bin:/go/bin:/usr/bin:/bin",
		"--env", "GOPATH=/go", "--env", "GOCACHE=/gocache",
		"--env", "GOPROXY=off", "--env", "GOTOOLCHAIN=local",
		ctr)
	b.run(ctx, t, "commit", "-q", "--rm", ctr, builderRef)
}

// assembleBase commits the runtime base for goarch: what the job needs
// from distroless/static:nonroot, nothing more. The CA bundle is the
// host's; /etc/passwd and /etc/group name root and nonroot (65532), and
// the default user is 65532, as in distroless.
func assembleBase(ctx context.Context, t *testing.T, b *buildah, goarch string) {
	t.Helper()
	bundle, err := hostCABundle()
	if err != nil {
		t.Fatalf("assemble base: %v", err)
	}
	ctr := b.run(ctx, t, "from", "--pull=never", "--name", "bw-imagetest-base-"+goarch, "scratch")
	root := b.run(ctx, t, "mount", ctr)
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n",
		"etc/group":  "root:x:0:\nnonroot:x:65532:\n",
	}
	for name, body := range files {
		if err := writeFile(filepath.Join(root, name), []byte(body), 0o644); err != nil {
			t.Fatalf("assemble base: %v", err)
		}
	}
	if err := copyFile(bundle, filepath.Join(root, caBundle)); err != nil {
		t.Fatalf("assemble base: %v", err)
	}
	b.run(ctx, t, "config", "--os", "linux", "--arch", goarch, "--user", "65532",
		"--env", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"--env", "SSL_CERT_FILE=/"+caBundle,
		ctr)
	b.run(ctx, t, "commit", "-q", "--rm", ctr, baseRef+goarch)
}

// caBundle is where distroless (and Debian) keep the CA bundle, without
// the leading slash.
const caBundle = "etc/ssl/certs/ca-certificates.crt"

// hostCABundle finds this machine's CA bundle (the Debian path first, then
// the other places Go's crypto/x509 looks on Linux).
func hostCABundle() (string, error) {
	for _, p := range []string{
		"/" + caBundle,
		"/etc/pki/tls/certs/ca-bundle.crt",
		"/etc/ssl/ca-bundle.pem",
		"/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
		"/etc/ssl/cert.pem",
	} {
		if _, err := os.Stat(p); err == nil {
			return filepath.EvalSymlinks(p)
		}
	}
	return "", errors.New("no CA bundle found on this machine")
}

// sharedLibs lists the dynamic loader and libraries exe needs, as paths
// on this machine; nil for a static executable.
func sharedLibs(ctx context.Context, exe string) ([]string, error) {
	f, err := elf.Open(exe)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", exe, err)
	}
	defer f.Close()
	static := true
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			static = false
		}
	}
	if static {
		return nil, nil
	}
	out, err := exec.CommandContext(ctx, "ldd", exe).Output()
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %w", exe, err)
	}
	var libs []string
	for _, line := range strings.Split(string(out), "\n") {
		// "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" or
		// "/lib64/ld-linux-x86-64.so.2 (0x…)"; linux-vdso has no file.
		fields := strings.Fields(line)
		switch {
		case len(fields) >= 3 && fields[1] == "=>" && strings.HasPrefix(fields[2], "/"):
			libs = append(libs, fields[2])
		case len(fields) >= 1 && strings.HasPrefix(fields[0], "/"):
			libs = append(libs, fields[0])
		}
	}
	return libs, nil
}

// copyTree copies src (a file or a directory) to dst, keeping permission
// bits and symlinks, and leaving out what skip matches (rel is relative
// to src).
func copyTree(src, dst string, skip func(rel string, d fs.DirEntry) bool) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		if skip != nil && rel != "." && skip(rel, d) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		default:
			return copyFile(path, target)
		}
	})
}

// copyFile copies the contents of src (following symlinks) to dst with
// src's permission bits, creating dst's parent directories.
func copyFile(src, dst string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	info, err := in.Stat()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, info.Mode().Perm())
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}()
	_, err = io.Copy(out, in)
	return err
}

func writeFile(path string, data []byte, mode fs.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, data, mode)
}
