package quiltpkg

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"benchling-webhook/internal/exitcode"

	"github.com/stretchr/testify/require"
)

func TestCheckPrefix(t *testing.T) {
	tests := map[string]struct {
		in, want   string
		allowEmpty bool
		ok         bool
	}{
		"plain":               {"benchling/etr_123", "benchling/etr_123", false, true},
		"trailing slash":      {"benchling/etr_123/", "benchling/etr_123", false, true},
		"empty refused":       {"", "", false, false},
		"empty allowed":       {"", "", true, true},
		"leading slash":       {"/benchling", "", false, false},
		"dot dot":             {"benchling/../x", "", false, false},
		"backslash":           {`benchling\x`, "", false, false},
		"only slashes":        {"//", "", false, false},
		"only slashes, local": {"//", "", true, true},
		"longest":             {strings.Repeat("x", MaxPrefixLen), strings.Repeat("x", MaxPrefixLen), false, true},
		"too long":            {strings.Repeat("x", MaxPrefixLen+1), "", false, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := CheckPrefix(tc.in, tc.allowEmpty)
			if !tc.ok {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
	_, err := CheckPrefix("a/../b", false)
	require.ErrorContains(t, err, "not a safe key prefix")
	require.LessOrEqual(t, len(StateKey(strings.Repeat("x", MaxPrefixLen))), 1024, "S3's key limit")
}

// badEntryIDs are ids every entry point refuses (issue 10); the state
// machines' tests use the same list (internal/testkit/emulate).
var badEntryIDs = []string{
	"etr_", "etr", "EXP123", "abc", "ETR_abc", " etr_abc", "etr_abc ", "etr_a b", "etr_a\nb",
	"etr_x/../etr_victim", "etr_x/../../entries/etr_victim", "etr_../x", "etr_a/b",
	"etr_a?b", "etr_a#b", "etr_a%2Fb", "etr_a.b", "etr_a-b", "etr_a_b", "etr__ab", "etr_ab_",
	"etr_\u00e9t\u00e9", "etr_\u0430bc", "etr_\u00a0", "etr_a\x00b",
	"etr_" + strings.Repeat("x", MaxEntryIDLen-3), "etr_" + strings.Repeat("x", 996),
}

func TestValidEntryID(t *testing.T) {
	for _, id := range []string{"etr_0uKCQZ8f", "etr_OtsAuzfT", "etr_1", "etr_ABCxyz019", "etr_" + strings.Repeat("x", MaxEntryIDLen-4)} {
		require.True(t, ValidEntryID(id), id)
	}
	for _, id := range badEntryIDs {
		require.False(t, ValidEntryID(id), "%q", id)
	}
	require.Len(t, "etr_"+strings.Repeat("x", 996), 1000)
	for _, c := range EntryIDAlphabet {
		require.True(t, ValidEntryID("etr_"+string(c)), string(c))
	}
	require.Len(t, EntryIDAlphabet, 62)
}

func TestCheckPackageName(t *testing.T) {
	for _, name := range []string{"benchling/etr_1", "my-lab_2/etr_0uKCQZ8f"} {
		id, err := CheckPackageName(name)
		require.NoError(t, err, name)
		require.Equal(t, name[strings.Index(name, "/")+1:], id)
	}
	for name, want := range map[string]error{
		"benchling":                            ErrInvalidPackageName,
		"benchling/":                           ErrInvalidEntryID,
		"/etr_1":                               ErrInvalidPackageName,
		"a/b/etr_1":                            ErrInvalidPackageName,
		"benchling/../etr_1":                   ErrInvalidPackageName,
		"benchling/etr_x/../etr_v":             ErrInvalidPackageName,
		"bench?ling/etr_1":                     ErrInvalidPackageName,
		"bench#ling/etr_1":                     ErrInvalidPackageName,
		"..":                                   ErrInvalidPackageName,
		"../etr_1":                             ErrInvalidPackageName,
		"bench ling/etr_1":                     ErrInvalidPackageName,
		"benchling/etr_a?b":                    ErrInvalidEntryID,
		"benchling/etr_a#b":                    ErrInvalidEntryID,
		"benchling/..":                         ErrInvalidEntryID,
		"benchling/p":                          ErrInvalidEntryID,
		"benchling/etr_a%2Fb":                  ErrInvalidEntryID,
		"benchling/" + strings.Repeat("x", 70): ErrInvalidEntryID,
	} {
		_, err := CheckPackageName(name)
		require.ErrorIs(t, err, want, name)
	}
	_, err := CheckPackageName("benchling/etr_a?b")
	require.ErrorContains(t, err, `"etr_a?b"`, "the message names the id")
	require.Equal(t, 3, exitcode.Resolve(err))
	_, err = CheckPackageName("a/b/etr_1")
	require.Equal(t, 2, exitcode.Resolve(err))
}

func TestCheckPackagePrefix(t *testing.T) {
	for _, p := range []string{"benchling", "quilt-benchling", "lab_2", "X"} {
		require.NoError(t, CheckPackagePrefix(p), p)
	}
	for _, p := range []string{"", "lab/benchling", "benchling/", ".", "..", "a.b", "a?b", "a#b", "a b", "\u00e9"} {
		require.ErrorIs(t, CheckPackagePrefix(p), ErrInvalidPackageName, p)
	}
}

func TestKeys(t *testing.T) {
	pkg := Name("benchling", "etr_1")
	require.Equal(t, "benchling/etr_1", pkg)
	require.Equal(t, "benchling/etr_1/README.md", Key(pkg, ReadmeName))
	require.Equal(t, "benchling/etr_1/entry.json", Key(pkg, EntryName))
	require.Equal(t, "benchling/etr_1/input.json", Key(pkg, InputName))
	require.Equal(t, "README.md", Key("", ReadmeName), "the root of a local folder")
	require.Equal(t, "benchling/.reconcile/state.json", StateKey("benchling"))
	require.Equal(t, []string{"README.md", "entry.json", "input.json"}, Reserved())
}

func TestCheckCatalogHost(t *testing.T) {
	for host, want := range map[string]string{
		"catalog.example.com": "catalog.example.com", "https://catalog.example.com/": "catalog.example.com",
		"http://c.example.com": "c.example.com", "localhost:3000": "localhost:3000",
		"https://c.example.com/b/x": "", "c.example.com?x": "", "a b": "", "https://": "", "user@host": "", "": "",
	} {
		got, err := CheckCatalogHost(host)
		if want == "" {
			require.Error(t, err, host)
			continue
		}
		require.NoError(t, err, host)
		require.Equal(t, want, got, host)
	}
}

func TestCatalogLinks(t *testing.T) {
	tests := map[string]struct {
		host, bucket, pkg string
		want              Links
	}{
		"catalog": {"demo.quiltdata.com", "quilt-benchling", "benchling/EXP25000007", Links{
			Catalog:   "https://demo.quiltdata.com/b/quilt-benchling/packages/benchling/EXP25000007",
			Revise:    "https://demo.quiltdata.com/b/quilt-benchling/packages/benchling/EXP25000007?action=revisePackage",
			QuiltSync: "quilt+s3://quilt-benchling#package=benchling/EXP25000007&catalog=demo.quiltdata.com",
		}},
		"no catalog": {"", "b", "p/q", Links{QuiltSync: "quilt+s3://b#package=p/q"}},
		"escaped": {"c", "b", "p/a b?", Links{
			Catalog:   "https://c/b/b/packages/p/a%20b%3F",
			Revise:    "https://c/b/b/packages/p/a%20b%3F?action=revisePackage",
			QuiltSync: "quilt+s3://b#package=p/a b?&catalog=c",
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, tc.want, CatalogLinks(tc.host, tc.bucket, tc.pkg))
		})
	}
	// A host as given on the command line goes through CheckCatalogHost.
	host, err := CheckCatalogHost("https://demo.quiltdata.com/")
	require.NoError(t, err)
	require.Equal(t, Links{
		Catalog:   "https://demo.quiltdata.com/b/b/packages/p/q",
		Revise:    "https://demo.quiltdata.com/b/b/packages/p/q?action=revisePackage",
		QuiltSync: "quilt+s3://b#package=p/q&catalog=demo.quiltdata.com",
	}, CatalogLinks(host, "b", "p/q"))
}

func TestControlPrefix(t *testing.T) {
	for pkg, want := range map[string]string{
		"benchling/etr_123": "benchling/.packaging/etr_123",
		"a/b/etr_1":         "a/b/.packaging/etr_1",
		"etr_1":             ".packaging/etr_1",
		"":                  ".packaging/package",
	} {
		if got := ControlPrefix(pkg); got != want {
			t.Errorf("ControlPrefix(%q) = %q, want %q", pkg, got, want)
		}
	}
	if got := ControlKey("benchling/etr_1", RecordName); got != "benchling/.packaging/etr_1/record.json" {
		t.Errorf("ControlKey = %q", got)
	}
}

func TestRecordRoundTrip(t *testing.T) {
	at := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	r := Record{Package: "benchling/etr_1", State: RecordComplete, StartedAt: at, CompletedAt: &at,
		Files: []RecordFile{{Key: "benchling/etr_1/a.csv", Size: 3, CRC32: 7, ETag: `"x"`, VersionID: "v1"}}}
	b, err := r.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	r.Version = 1
	if !reflect.DeepEqual(got, r) {
		t.Errorf("round trip: got %+v, want %+v", got, r)
	}
	for _, bad := range []string{`{`, `{"version":2,"state":"complete"}`, `{"version":1,"state":"done"}`} {
		if _, err := DecodeRecord([]byte(bad)); !errors.Is(err, ErrInvalidRecord) {
			t.Errorf("DecodeRecord(%s) = %v, want ErrInvalidRecord", bad, err)
		}
	}
}

func TestRevisionLink(t *testing.T) {
	for name, tc := range map[string]struct{ host, bucket, pkg, hash, want string }{
		"revision":   {"demo.quiltdata.com", "quilt-benchling", "benchling/etr_1", "abc123", "https://demo.quiltdata.com/b/quilt-benchling/packages/benchling/etr_1/tree/abc123"},
		"no catalog": {"", "b", "p/etr_1", "abc", ""},
		"no hash":    {"c", "b", "p/etr_1", "", ""},
		"escaped":    {"c", "b", "p/etr_1", "a/b", "https://c/b/b/packages/p/etr_1/tree/a%2Fb"},
	} {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, tc.want, RevisionLink(tc.host, tc.bucket, tc.pkg, tc.hash))
		})
	}
}

// TestCanvasKeys: the mapping objects and the status live in the
// package's control folder, outside what Quilt packages and what job
// export may write or delete (its inPackage rule skips the control folder).
func TestCanvasKeys(t *testing.T) {
	pkg := "benchling/etr_1"
	require.Equal(t, "benchling/.packaging/etr_1/canvases/", CanvasesPrefix(pkg))
	require.Equal(t, "benchling/.packaging/etr_1/canvases/cnvs_abc.json", CanvasKey(pkg, "cnvs_abc"))
	require.Equal(t, "benchling/.packaging/etr_1/status.json", ControlKey(pkg, StatusName))
	for _, k := range []string{CanvasKey(pkg, "cnvs_abc"), ControlKey(pkg, StatusName)} {
		require.False(t, strings.HasPrefix(k, pkg+"/"), "%s is not below the package", k)
		require.True(t, strings.HasPrefix(k, ControlPrefix(pkg)+"/"), "%s is in the control folder", k)
	}
}
