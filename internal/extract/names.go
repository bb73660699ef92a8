package extract

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxKeyLen is S3's limit on the length of an object key, in bytes.
const MaxKeyLen = 1024

// CheckName reports whether an archive entry name is safe to turn into an
// object key, and whether it names a directory (a trailing slash).
//
// A safe name is valid UTF-8 without control characters or backslashes,
// is relative (no leading slash, no drive letter such as "C:"), and has no
// empty, "." or ".." path elements. Such a name maps to exactly one key
// below the package prefix, on S3 and in a local folder alike. Names that
// Windows tools write with backslashes are rejected rather than guessed at.
func CheckName(name string) (isDir bool, err error) {
	fail := func(why string) (bool, error) {
		return false, fmt.Errorf("%w: entry %q %s", ErrInsecurePath, name, why)
	}
	switch {
	case name == "":
		return fail("is empty")
	case !utf8.ValidString(name):
		return fail("is not valid UTF-8")
	case strings.ContainsFunc(name, isControl):
		return fail("contains a control character")
	case strings.Contains(name, `\`):
		return fail(`contains a backslash`)
	case strings.HasPrefix(name, "/"):
		return fail("is an absolute path")
	case hasDrive(name):
		return fail("starts with a drive letter")
	}
	isDir = strings.HasSuffix(name, "/")
	elems := strings.Split(strings.TrimSuffix(name, "/"), "/")
	for _, e := range elems {
		switch e {
		case "":
			return fail("has an empty path element")
		case ".", "..":
			return fail("has a " + e + " path element")
		}
	}
	return isDir, nil
}

// checkReserved refuses an entry whose first path element (the name at the
// package root, file or folder) is one of reserved.
func checkReserved(name string, reserved []string) error {
	if len(reserved) == 0 {
		return nil
	}
	first, _, _ := strings.Cut(name, "/")
	for _, r := range reserved {
		if first == r {
			return fmt.Errorf("%w: entry %q clashes with the package's own %s", ErrReservedName, name, r)
		}
	}
	return nil
}

// Key returns the object key for a checked entry name below prefix.
func Key(prefix, name string) (string, error) {
	key := name
	if prefix != "" {
		key = prefix + "/" + name
	}
	if len(key) > MaxKeyLen {
		return "", fmt.Errorf("%w: entry %q gives a key of %d bytes, more than S3's %d", ErrInsecurePath, name, len(key), MaxKeyLen)
	}
	return key, nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// hasDrive reports a DOS drive prefix such as "C:" or "C:foo".
func hasDrive(name string) bool {
	return len(name) >= 2 && name[1] == ':' &&
		(('a' <= name[0] && name[0] <= 'z') || ('A' <= name[0] && name[0] <= 'Z'))
}
