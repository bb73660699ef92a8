package readers

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	r := WithContext(ctx, strings.NewReader("hello world"))
	b := make([]byte, 5)
	n, err := r.Read(b)
	require.NoError(t, err)
	require.Equal(t, "hello", string(b[:n]))
	cancel()
	_, err = r.Read(b)
	require.ErrorIs(t, err, context.Canceled)
	_, err = io.ReadAll(r)
	require.ErrorIs(t, err, context.Canceled)
}
