package s3local

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"benchling-webhook/internal/testkit/testenv"
)

// ErrNoBinary reports that the versitygw binary could not be found. Errors
// returned by [FindBinary] and [Start] wrap it, so callers can tell "not
// installed" apart from "failed to start" with errors.Is.
// It matches [testenv.ErrMissing] too, so [testenv.Need] skips for it.
var ErrNoBinary = testenv.MissingError("s3local: versitygw binary not found (run `make tools` or set BW_VERSITYGW)")

// EnvBinary names the environment variable that overrides where
// [FindBinary] looks for versitygw.
const EnvBinary = "BW_VERSITYGW"

// FindBinary returns the path of the versitygw binary: $BW_VERSITYGW when it
// is set, otherwise <repo root>/bin/versitygw ([testenv.RepoRoot]). The
// error wraps [ErrNoBinary] when the binary is missing.
func FindBinary() (string, error) {
	if p := os.Getenv(EnvBinary); p != "" {
		return checkBinary(p)
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		return "", fmt.Errorf("find versitygw: %w: %w", ErrNoBinary, err)
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
