package extract

import "benchling-webhook/internal/exitcode"

// Sentinel errors for archives that must be refused. Every one of them means
// bad input (exit code 3): retrying with the same archive cannot help.
// Errors returned by [Run] wrap them with the entry name and the details;
// test with errors.Is.
var (
	ErrNotZip            = exitcode.NewSentinel("extract: not a zip archive", exitcode.BadInput)
	ErrInsecurePath      = exitcode.NewSentinel("extract: unsafe entry name", exitcode.BadInput)
	ErrEncrypted         = exitcode.NewSentinel("extract: encrypted entry", exitcode.BadInput)
	ErrUnsupportedMethod = exitcode.NewSentinel("extract: unsupported compression method", exitcode.BadInput)
	ErrChecksum          = exitcode.NewSentinel("extract: checksum mismatch", exitcode.BadInput)
	ErrTruncated         = exitcode.NewSentinel("extract: entry data ends early", exitcode.BadInput)
	ErrTooLarge          = exitcode.NewSentinel("extract: archive too large", exitcode.BadInput)
	ErrTooManyEntries    = exitcode.NewSentinel("extract: too many entries", exitcode.BadInput)
	ErrOverlap           = exitcode.NewSentinel("extract: overlapping entries", exitcode.BadInput)
	ErrDuplicateName     = exitcode.NewSentinel("extract: duplicate entry name", exitcode.BadInput)
	ErrHeaderMismatch    = exitcode.NewSentinel("extract: local header disagrees with the central directory", exitcode.BadInput)
	ErrReservedName      = exitcode.NewSentinel("extract: reserved entry name", exitcode.BadInput)
)
