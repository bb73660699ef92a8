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
// file ([testenv.Executable]); if not, the error wraps [ErrNoBinary].
func checkBinary(p string) (string, error) {
	abs, err := testenv.Executable(p)
	if errors.Is(err, testenv.ErrMissing) {
		return "", fmt.Errorf("find versitygw: %w (%w)", ErrNoBinary, err)
	}
	if err != nil {
		return "", fmt.Errorf("find versitygw: %w", err)
	}
	return abs, nil
}
