package store

import (
	"errors"
	"io"

	"benchling-webhook/internal/exitcode"
)

// Errors of [S3.Get] and [Dir.Get], returned wrapped: compare with errors.Is.
var (
	// ErrNotFound means the object does not exist. It carries no exit
	// code: whether a missing object is a fault is the caller's call.
	ErrNotFound = errors.New("store: object not found")
	// ErrTooLarge means the object is larger than the caller's limit
	// (exit 3).
	ErrTooLarge = exitcode.NewSentinel("store: object too large", exitcode.BadInput)
)

// readAtMost reads r whole, unless it holds more than max bytes.
func readAtMost(r io.Reader, max int64) ([]byte, error) {
	// Bounded by max, which is meant for small metadata: the caller needs
	// the bytes whole (to decode JSON, say).
	data, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, ErrTooLarge
	}
	return data, nil
}
