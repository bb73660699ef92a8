// Package testenv finds the repository root and the test tools (bin/,
// tools/node), and holds the one rule for a missing tool: skip with a hint,
// or fail in CI. See docs/testkit.md#test-tools-internaltestkittestenv.
package testenv

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The variables that turn a missing tool from a skip into a failure (CI=true
// does so for all of them).
const (
	// EnvRequireS3 set to "1" requires versitygw and the Node tools; `make
	// test` sets it.
	EnvRequireS3 = "BW_REQUIRE_S3"
	// EnvRequireImage set to "1" requires buildah and root for the image
	// test; .ci/run sets it. It is apart from EnvRequireS3 so `make test`
	// on a machine without root still passes.
	EnvRequireImage = "BW_REQUIRE_IMAGE"
)

// ErrMissing is what every "tool not installed" error matches with
// errors.Is; [Need] skips the test for it unless [Required].
var ErrMissing = errors.New("testenv: test tool not installed (run `make tools`)")

// ErrNoNode means tools/node is not installed.
var ErrNoNode = MissingError("Node tools not installed (run `make tools`, which runs npm ci in tools/node)")

// MissingError returns an error with text msg that matches [ErrMissing].
func MissingError(msg string) error { return missing(msg) }

type missing string

func (m missing) Error() string        { return string(m) }
func (m missing) Is(target error) bool { return target == ErrMissing }

// Required reports whether a missing tool must fail the test: CI=true, or
// the opt-in variable optIn ([EnvRequireS3], [EnvRequireImage]) set to "1".
// This is the only place the repository reads CI.
func Required(optIn string) bool {
	return os.Getenv("CI") == "true" || os.Getenv(optIn) == "1"
}

// Need does nothing if err is nil. If err matches [ErrMissing] and the
// environment does not require the tool ([Required] with optIn), it skips
// tb with err (which says what to install); otherwise it fails tb.
func Need(tb testing.TB, optIn string, err error) {
	tb.Helper()
	if err == nil {
		return
	}
	switch {
	case !errors.Is(err, ErrMissing):
		tb.Fatal(err)
	case Required(optIn):
		tb.Fatalf("%v (CI=true or %s=1: not skipping)", err, optIn)
	default:
		tb.Skipf("skipping: %v", err)
	}
}

// modulePath is the first line of the go.mod that marks the repository root.
const modulePath = "module benchling-webhook"

// RepoRoot returns the repository root: the nearest directory at or above
// the working directory whose go.mod declares module benchling-webhook (so
// tools/, a module of its own, is not mistaken for it). Outside the
// repository the error matches [ErrMissing].
func RepoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("locate repository root: %w", err)
	}
	return repoRoot(wd)
}

// repoRoot is RepoRoot from dir.
func repoRoot(dir string) (string, error) {
	for d := dir; ; {
		ok, err := isRepoGoMod(filepath.Join(d, "go.mod"))
		if err != nil {
			return "", err
		}
		if ok {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("locate repository root above %s: no go.mod with %q: %w", dir, modulePath, ErrMissing)
		}
		d = parent
	}
}

// isRepoGoMod reports whether the file at p exists and its first
// significant line (comments and blank lines skipped) is [modulePath].
func isRepoGoMod(p string) (bool, error) {
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
		return false, fmt.Errorf("open %s: %w", p, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "//") {
			continue
		}
		return line == modulePath, nil
	}
	if err := sc.Err(); err != nil {
		return false, fmt.Errorf("read %s: %w", p, err)
	}
	return false, nil
}

// Bin returns the absolute path of <repo root>/bin/name (versitygw,
// actionlint, crane, job …) if it is an executable file. If it is not, the
// error matches [ErrMissing] and names the make target that builds it
// (`make tools`, or `make build` for bin/job).
func Bin(name string) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return Executable(filepath.Join(root, "bin", name))
}

// Executable returns the absolute form of p if it is an executable regular
// file; if it is missing or not executable the error matches [ErrMissing].
func Executable(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", p, err)
	}
	hint := "run `make tools`"
	if filepath.Base(abs) == "job" {
		hint = "run `make build`"
	}
	fi, err := os.Stat(abs)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", MissingError(fmt.Sprintf("%s not found (%s)", abs, hint))
		}
		return "", fmt.Errorf("stat %s: %w", abs, err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return "", MissingError(fmt.Sprintf("%s is not an executable file (%s)", abs, hint))
	}
	return abs, nil
}

// Node is tools/node: the pinned Node binary and the node_modules npm ci
// installs there.
type Node struct {
	// Bin is node_modules/.bin/node.
	Bin string
	// Modules is tools/node/node_modules.
	Modules string
}

// NodeTools returns tools/node under root ("" means [RepoRoot]) once its
// node binary is installed; otherwise the error wraps [ErrNoNode].
func NodeTools(root string) (Node, error) {
	if root == "" {
		var err error
		if root, err = RepoRoot(); err != nil {
			return Node{}, err
		}
	}
	modules := filepath.Join(root, "tools", "node", "node_modules")
	n := Node{Bin: filepath.Join(modules, ".bin", "node"), Modules: modules}
	if _, err := os.Stat(n.Bin); err != nil {
		return Node{}, fmt.Errorf("%w: %s missing", ErrNoNode, n.Bin)
	}
	return n, nil
}

// Module returns node_modules/rel (slash-separated) if it exists;
// otherwise the error wraps [ErrNoNode].
func (n Node) Module(rel string) (string, error) {
	p := filepath.Join(n.Modules, filepath.FromSlash(rel))
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%w: %s missing", ErrNoNode, p)
	}
	return p, nil
}
