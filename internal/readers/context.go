// Package readers holds small io.Reader wrappers shared by the pipeline.
package readers

import (
	"context"
	"io"
)

// WithContext returns a reader that fails with ctx's error once ctx is
// done, so a long copy stops at its next read after a cancellation.
func WithContext(ctx context.Context, r io.Reader) io.Reader {
	return &contextReader{ctx: ctx, r: r}
}

type contextReader struct {
	ctx context.Context
	r   io.Reader
}

func (r *contextReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}
