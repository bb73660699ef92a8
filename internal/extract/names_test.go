package extract

import (
	"path"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func TestCheckName(t *testing.T) {
	tests := []struct {
		name  string
		isDir bool
		ok    bool
	}{
		{"a.txt", false, true},
		{"My Entry (etr_1)/notes.md", false, true},
		{"data #1 50%?.csv", false, true},
		{"a+b=c&d.txt", false, true},
		{"literal%2Fslash.txt", false, true},
		{"résumé/Ω data.csv", false, true},
		{"実験/結果.csv", false, true},
		{"folder/", true, true},
		{"..foo", false, true},      // not a .. element
		{"foo..", false, true},      // not a .. element
		{"ab:c/d.txt", false, true}, // a colon after the second character is not a drive
		{"a:b/c.txt", false, false}, // "a:" is a drive letter
		{"", false, false},
		{"../x", false, false},
		{"a/../../x", false, false},
		{"a/..", false, false},
		{"..", false, false},
		{"/etc/passwd", false, false},
		{"//server/share", false, false},
		{`C:\x`, false, false},
		{"C:x", false, false},
		{"c:/x", false, false},
		{`..\x`, false, false},
		{`a\..\..\x`, false, false},
		{"a/./b", false, false},
		{"./a", false, false},
		{"a//b", false, false},
		{"a\x00b", false, false},
		{"a\nb", false, false},
		{"a\x7fb", false, false},
		{"\xff\xfe", false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			isDir, err := CheckName(tc.name)
			if !tc.ok {
				require.ErrorIs(t, err, ErrInsecurePath)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.isDir, isDir)
		})
	}
}

func TestKey(t *testing.T) {
	k, err := Key("benchling/etr_1", "a b/#c%.csv")
	require.NoError(t, err)
	require.Equal(t, "benchling/etr_1/a b/#c%.csv", k)
	k, err = Key("", "a.csv")
	require.NoError(t, err)
	require.Equal(t, "a.csv", k)
	_, err = Key("p", strings.Repeat("x", MaxKeyLen))
	require.ErrorIs(t, err, ErrInsecurePath)
}

// FuzzKey checks that every name CheckName accepts maps to a key that stays
// below the prefix, is clean, and round-trips to the name.
func FuzzKey(f *testing.F) {
	for _, s := range []string{"a.txt", "../x", "a/../../x", `C:\x`, "a//b", "résumé/Ω.csv", "a/", "./a", "/x", "a\x00", "..", "a/b/c/"} {
		f.Add(s)
	}
	const prefix = "benchling/etr_1"
	f.Fuzz(func(t *testing.T, name string) {
		isDir, err := CheckName(name)
		if err != nil {
			return
		}
		if !utf8.ValidString(name) || strings.Contains(name, `\`) || strings.HasPrefix(name, "/") {
			t.Fatalf("accepted %q", name)
		}
		trimmed := strings.TrimSuffix(name, "/")
		if isDir != (trimmed != name) {
			t.Fatalf("isDir=%v for %q", isDir, name)
		}
		if path.Clean(trimmed) != trimmed {
			t.Fatalf("accepted unclean name %q (clean: %q)", name, path.Clean(trimmed))
		}
		key, err := Key(prefix, name)
		if err != nil {
			if len(prefix)+1+len(name) <= MaxKeyLen {
				t.Fatalf("Key(%q): %v", name, err)
			}
			return
		}
		if !strings.HasPrefix(path.Clean("/"+key), "/"+prefix+"/") {
			t.Fatalf("key %q escapes prefix %q", key, prefix)
		}
		if strings.TrimPrefix(key, prefix+"/") != name {
			t.Fatalf("key %q does not round-trip to %q", key, name)
		}
	})
}
