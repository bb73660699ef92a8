package exitcode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestResolve(t *testing.T) {
	bad := NewSentinel("x: bad", BadInput)
	tests := map[string]struct {
		err  error
		want int
	}{
		"nil":                       {nil, OK},
		"unclassified":              {io.ErrUnexpectedEOF, Internal},
		"sentinel":                  {bad, BadInput},
		"wrapped sentinel":          {fmt.Errorf("entry %q: %w", "a", bad), BadInput},
		"joined":                    {errors.Join(errors.New("a"), bad), BadInput},
		"wrap":                      {Wrap(io.EOF, Transient), Transient},
		"outer code wins":           {Wrap(fmt.Errorf("ctx: %w", bad), Usage), Usage},
		"wrap keeps inner for Is":   {Wrap(bad, Transient), Transient},
		"sigterm":                   {Interrupted{Signal: syscall.SIGTERM}, 143},
		"sigint":                    {fmt.Errorf("stop: %w", Interrupted{Signal: syscall.SIGINT}), 130},
		"plain context cancelation": {context.Canceled, Internal},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, tc.want, Resolve(tc.err))
		})
	}
}

func TestWrapNil(t *testing.T) {
	require.NoError(t, Wrap(nil, BadInput))
}

func TestWrapUnwraps(t *testing.T) {
	bad := NewSentinel("x: bad", BadInput)
	require.ErrorIs(t, Wrap(bad, Transient), bad)
	require.Equal(t, "x: bad", Wrap(bad, Transient).Error())
}

func TestName(t *testing.T) {
	for code, want := range map[int]string{0: "ok", 1: "internal", 2: "usage", 3: "bad-input", 4: "transient", 5: "workflow-rejected", 6: "export-failed", 7: "export-timeout", 130: "interrupted", 143: "interrupted", 9: "unknown"} {
		require.Equal(t, want, Name(code), "code %d", code)
	}
}
