package s3local

import (
	"errors"
	"net"
	"os/exec"
	"strings"
	"testing"

	"benchling-webhook/internal/testkit/testenv"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTailBuffer(t *testing.T) {
	tb := &tailBuffer{max: 8}
	_, _ = tb.Write([]byte("hello "))
	_, _ = tb.Write([]byte("world"))
	assert.Equal(t, "lo world", tb.String())
	_, _ = tb.Write([]byte(strings.Repeat("z", 20)))
	assert.Equal(t, strings.Repeat("z", 8), tb.String())
}

func TestChildEnv(t *testing.T) {
	got := childEnv([]string{"PATH=/bin", "VGW_PORT=:9", "ROOT_ACCESS_KEY=x", "ROOT_SECRET_KEY=y", "HOME=/root"})
	assert.Equal(t, []string{"PATH=/bin", "HOME=/root"}, got)
}

// TestStartRetriesTakenPort hands Start a port that is already taken and
// checks that it moves on to another one.
func TestStartRetriesTakenPort(t *testing.T) {
	bin, err := FindBinary()
	testenv.Need(t, testenv.EnvRequireS3, err)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = taken.Close() })

	var picks []string
	pick := func() (string, error) {
		if len(picks) == 0 {
			picks = append(picks, taken.Addr().String())
			return taken.Addr().String(), nil
		}
		a, err := freeAddr()
		picks = append(picks, a)
		return a, err
	}
	s, err := start(t.Context(), Options{Binary: bin, Dir: t.TempDir()}, pick)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, s.Close()) })
	require.Len(t, picks, 2)
	assert.Equal(t, "https://"+picks[1], s.Endpoint)
}

func TestCloseReportsEarlyExit(t *testing.T) {
	s := &Server{done: make(chan struct{}), waitErr: errors.New("signal: segmentation fault"), cmd: &exec.Cmd{}}
	close(s.done)
	err := s.Close()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "already exited: signal: segmentation fault")
	assert.Equal(t, err, s.Close(), "Close is idempotent")
}
