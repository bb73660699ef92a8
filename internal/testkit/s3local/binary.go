package s3local

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ErrNoBinary reports that the versitygw binary could not be found. Errors
// returned by [FindBinary] and [Start] wrap it, so callers can tell "not
// installed" apart from "failed to start" with errors.Is.
var ErrNoBinary = errors.New("s3local: versitygw binary not found (run `make tools` or set BW_VERSITYGW)")

// EnvBinary names the environment variable that overrides where
// [FindBinary] looks for versitygw.
const EnvBinary = "BW_VERSITYGW"

// modulePath is the first line of the go.mod that marks the repository root.
const modulePath = "module benchling-webhook"

// FindBinary returns the path of the versitygw binary: $BW_VERSITYGW when it
// is set, otherwise <repo root>/bin/versitygw, where the repository root is
// the nearest directory at or above the working directory whose go.mod
// declares module benchling-webhook. The error wraps [ErrNoBinary] when
// the binary is missing.
func FindBinary() (string, error) {
	if p := os.Getenv(EnvBinary); p != "" {
		return checkBinary(p)
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find versitygw: get working directory: %w", err)
	}
	root, err := repoRoot(wd)
	if err != nil {
		return "", fmt.Errorf("find versitygw: %w", err)
	}
	return checkBinary(filepath.Join(root, "bin", "versitygw"))
}

// checkBinary returns the absolute form of p if it is an executable regular
// file.
func checkBinary(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("find versitygw: resolve %s: %w", p, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("find versitygw at %s: %w", abs, ErrNoBinary)
		}
		return "", fmt.Errorf("find versitygw: stat %s: %w", abs, err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return "", fmt.Errorf("find versitygw at %s: not an executable file: %w", abs, ErrNoBinary)
	}
	return abs, nil
}

// repoRoot walks up from dir to the directory whose go.mod starts with
// "module benchling-webhook" (comment and blank lines before it are
// skipped, so tools/go.mod, module benchling-webhook/tools, does not match).
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
			return "", fmt.Errorf("locate repository root above %s: no go.mod with %q: %w", dir, modulePath, ErrNoBinary)
		}
		d = parent
	}
}

// isRepoGoMod reports whether the file at p exists and its first
// significant line is exactly [modulePath].
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

// RepoRoot returns the repository root: the nearest directory at or above
// the working directory whose go.mod declares module benchling-webhook
// (so tools/, a module of its own, is not mistaken for it).
func RepoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("locate repository root: %w", err)
	}
	return repoRoot(wd)
}
