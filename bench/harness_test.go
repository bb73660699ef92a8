package bench

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParsePin(t *testing.T) {
	for spec, want := range map[string][2]string{"": {}, "0/1": {"0", "1"}, "0-2/3,4": {"0-2", "3,4"}} {
		child, server, err := parsePin(spec)
		require.NoError(t, err, spec)
		require.Equal(t, want, [2]string{child, server}, spec)
	}
	for _, spec := range []string{"0", "/1", "0/", "/"} {
		_, _, err := parsePin(spec)
		require.ErrorContains(t, err, envPin, spec)
	}
}

// A set-up that fails says why, and leaves nothing behind: no panic in the
// deferred clean-up (it used to run on a nil harness).
func TestHarnessSetUpFails(t *testing.T) {
	t.Run("malformed pin", func(t *testing.T) {
		t.Setenv(envPin, "0")
		h, err := newHarness(t.Logf)
		require.ErrorContains(t, err, envPin+`="0"`)
		require.Nil(t, h)
	})
	t.Run("server does not start", func(t *testing.T) {
		dir := t.TempDir()
		fake := filepath.Join(dir, "versitygw")
		require.NoError(t, os.WriteFile(fake, []byte("#!/bin/sh\nexit 7\n"), 0o755))
		s3 := filepath.Join(dir, "s3")
		require.NoError(t, os.Mkdir(s3, 0o755))
		t.Setenv("BW_VERSITYGW", fake)
		t.Setenv(envS3Dir, s3)
		t.Setenv(envPin, "")
		h, err := newHarness(t.Logf)
		require.ErrorContains(t, err, "exited before becoming ready")
		require.Nil(t, h)
		left, err := os.ReadDir(s3)
		require.NoError(t, err)
		require.Empty(t, left, "the server's directory is removed")
	})
}
