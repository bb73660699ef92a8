package render

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"

	"benchling-webhook/internal/benchling"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(p, got, 0o644))
		return
	}
	want, err := os.ReadFile(p)
	require.NoError(t, err, "run go test ./internal/render -update to create it")
	require.Equal(t, string(want), string(got), "README differs from %s (go test ./internal/render -update rewrites it)", p)
}

// fixtureEntry decodes the benchling package's fixture, a real entry.
func fixtureEntry(t *testing.T) benchling.Entry {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "benchling", "testdata", "entry.json"))
	require.NoError(t, err)
	e, err := benchling.DecodeEntry(b)
	require.NoError(t, err)
	return e
}

// exportFiles are in archive order, not sorted: the README sorts them.
var exportFiles = []File{
	{Name: "quiltable/quiltable.pdf", Size: 48213},
	{Name: "quiltable/attachments/sample_sheet.csv", Size: 1536},
	{Name: "quiltable/attachments/reads_R1.fastq.gz", Size: 7 << 30},
	{Name: "index.html", Size: 0},
}

func TestREADMEGolden(t *testing.T) {
	entry := fixtureEntry(t)
	hostile := benchling.Entry{
		ID:        "etr_h|x",
		DisplayID: "EXP*1*",
		Name:      "Evil | name *bold* _it_ `code`\n# heading\r\n<script>alert(1)</script> [x](javascript:alert(1)) &amp; $x$",
		WebURL:    "javascript:alert(1)",
		APIURL:    "https://example.com/api/v2/entries/a b(c)|d",
		FolderID:  "lib_<b>",
		CreatedAt: "2025-01-01T00:00:00Z",
		Creator:   benchling.User{ID: "ent_1", Name: "Mallory <img src=x onerror=alert(1)>", Handle: "m|b"},
		Authors: []benchling.User{
			{ID: "ent_1", Name: "Mallory\nTwo Lines", Handle: "mallory"},
			{Name: "No Handle"},
			{ID: "ent_3", Handle: "only_handle"},
		},
		Schema: benchling.Schema{Name: "S|chema"},
		Fields: map[string]benchling.Field{
			"pipe | field": {DisplayValue: "a|b", Type: "text"},
			"multi\nline":  {DisplayValue: "x\ny\r\nz", Type: "text"},
			"html":         {DisplayValue: "<b>bold</b> & <!-- c -->", Type: "text"},
			"empty":        {},
			"backslash":    {DisplayValue: `C:\path\|`, Type: "text"},
		},
	}
	hostileFiles := []File{
		{Name: "a|b/c*d.txt", Size: 3},
		{Name: "x [y](z).md", Size: 10},
		{Name: "new\nline<b>.csv", Size: 1 << 20},
		{Name: "_under_score_.txt", Size: 1},
	}
	tests := map[string]READMEData{
		"README.golden.md": {Entry: entry, Files: exportFiles, PackageName: "benchling/etr_0uKCQZ8f",
			Registry: "quilt-benchling", CatalogHost: "demo.quiltdata.com"},
		"README.nocatalog.golden.md": {Entry: entry, Files: exportFiles, PackageName: "benchling/etr_0uKCQZ8f",
			Registry: "quilt-benchling"},
		"README.hostile.golden.md": {Entry: hostile, Files: hostileFiles, PackageName: "benchling/etr_h",
			Registry: "bucket", CatalogHost: "catalog.example.com"},
		"README.minimal.golden.md": {Entry: benchling.Entry{ID: "etr_1"}},
	}
	for name, d := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := New().README(d)
			require.NoError(t, err)
			require.NotContains(t, string(got), "<no value>")
			golden(t, name, got)
		})
	}
}

// TestREADMEHostile checks the escaping properties directly, not only
// through the golden file.
func TestREADMEHostile(t *testing.T) {
	got, err := New().README(READMEData{
		Entry: benchling.Entry{ID: "etr_1", Name: "a|b\n# not a heading <script>x</script>", WebURL: "javascript:alert(1)",
			Fields: map[string]benchling.Field{"f|g": {DisplayValue: "1\n2|3"}}},
		Files: []File{{Name: "p|q\nr.txt", Size: 1}},
	})
	require.NoError(t, err)
	s := string(got)
	require.NotContains(t, s, "javascript:", "unsafe URLs are not linked")
	require.NotContains(t, s, "<script>")
	require.NotContains(t, s, "\n# not a heading")
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(line, "| ") && !strings.HasPrefix(line, "| Property") && !strings.HasPrefix(line, "| Field") && !strings.HasPrefix(line, "| Path") {
			// Every table row keeps its column count: no unescaped pipe inside a cell.
			cells := strings.Count(strings.ReplaceAll(line, `\|`, ""), "|")
			require.Contains(t, []int{3, 4}, cells, line)
		}
	}
	require.Contains(t, s, `| f\|g | 1 2\|3 |`)
	require.Contains(t, s, `[p\|q r.txt](p%7Cq%0Ar.txt)`)
}

func TestREADMEDeterministic(t *testing.T) {
	entry := fixtureEntry(t)
	d := READMEData{Entry: entry, Files: exportFiles, PackageName: "p", Registry: "b", CatalogHost: "c"}
	a, err := New().README(d)
	require.NoError(t, err)
	rev := make([]File, len(exportFiles))
	for i, f := range exportFiles {
		rev[len(rev)-1-i] = f
	}
	d.Files = rev
	b, err := New().README(d)
	require.NoError(t, err)
	require.Equal(t, string(a), string(b))
	require.Equal(t, exportFiles[0].Name, d.Files[len(d.Files)-1].Name, "README must not sort the caller's slice")
}

func TestREADMEManyFiles(t *testing.T) {
	files := make([]File, MaxListedFiles+5)
	for i := range files {
		files[i] = File{Name: strings.Repeat("f", 1+i%7) + string(rune('a'+i%26)), Size: 2}
	}
	got, err := New().README(READMEData{Entry: benchling.Entry{ID: "etr_1"}, Files: files})
	require.NoError(t, err)
	require.Contains(t, string(got), "| … and 5 more files | | |")
	require.Contains(t, string(got), "1005 exported files, 2.0 KiB (2010 bytes).")
	require.Equal(t, MaxListedFiles, strings.Count(string(got), "| 2 B | 2 |"))
}

// TestTemplateFS swaps the template file system, as a test or a variant
// template would.
func TestTemplateFS(t *testing.T) {
	r := &Renderer{fs: fstest.MapFS{
		readmeTemplate: {Data: []byte("{{md .Entry.Name}}|{{user .Entry.Creator}}|{{size .TotalBytes}}|{{.Links.QuiltSync}}")},
	}}
	got, err := r.README(READMEData{Entry: benchling.Entry{ID: "etr_1", Name: "a*b"}, Files: []File{{Name: "x", Size: 1536}},
		Registry: "b", PackageName: "p/q", CatalogHost: "c.example"})
	require.NoError(t, err)
	require.Equal(t, `a\*b|—|1.5 KiB|quilt+s3://b#package=p/q&catalog=c.example`, string(got))

	for name, body := range map[string]string{
		"syntax":      "{{.Entry.Name",
		"missing key": "{{.Entry.Nope}}",
	} {
		r := &Renderer{fs: fstest.MapFS{readmeTemplate: {Data: []byte(body)}}}
		_, err := r.README(READMEData{Entry: benchling.Entry{ID: "etr_1"}})
		require.ErrorContains(t, err, "render: ", name)
	}
	_, err = (&Renderer{fs: fstest.MapFS{}}).README(READMEData{})
	require.ErrorContains(t, err, "render: parse")
}

func TestMDEscape(t *testing.T) {
	tests := map[string]string{
		"":                             "",
		"plain text 123":               "plain text 123",
		"etr_0uKCQZ8f":                 "etr_0uKCQZ8f",
		"_lead and trail_":             `\_lead and trail\_`,
		"a__b":                         `a\_\_b`,
		"a|b":                          `a\|b`,
		"*bold* `code` ~strike~":       "\\*bold\\* \\`code\\` \\~strike\\~",
		"[x](y) ![i](j)":               `\[x\](y) \!\[i\](j)`,
		"<script>alert(1)</script>":    `\<script\>alert(1)\</script\>`,
		"&amp; $x$ #1":                 `\&amp; \$x\$ \#1`,
		`back\slash`:                   `back\\slash`,
		"line1\nline2\r\nline3\rline4": "line1 line2 line3 line4",
		"tab\there\x00nul":             "tab here nul",
		"  padded  ":                   "padded",
		"\n# heading":                  `\# heading`,
		"- list":                       "- list",
		"résumé_ü":                     "résumé_ü",
		"bad \xff utf8":                "bad \uFFFD utf8",
		"para\u2028sep":                "para sep",
	}
	for in, want := range tests {
		require.Equal(t, want, mdEscape(in), "%q", in)
	}
}

func TestLinkDest(t *testing.T) {
	tests := map[string]struct {
		want string
		ok   bool
	}{
		"https://example.com/a":                   {"https://example.com/a", true},
		"http://example.com/a b":                  {"http://example.com/a%20b", true},
		"https://example.com/a(b)|c":              {"https://example.com/a%28b%29%7Cc", true},
		"quilt+s3://bucket#package=a/b&catalog=c": {"quilt+s3://bucket#package=a/b&catalog=c", true},
		"javascript:alert(1)":                     {"", false},
		"data:text/html,<b>":                      {"", false},
		"/relative":                               {"", false},
		"":                                        {"", false},
		"https://exa mple.com":                    {"", false},
	}
	for in, tc := range tests {
		got, ok := linkDest(in)
		require.Equal(t, tc.ok, ok, in)
		require.Equal(t, tc.want, got, in)
	}
}

// TestREADMEAdded: files a person added get their own table, after the
// export's, and do not count in the export's totals.
func TestREADMEAdded(t *testing.T) {
	got, err := New().README(READMEData{Entry: benchling.Entry{ID: "etr_1"},
		Files: []File{{Name: "a.csv", Size: 3}}, Added: []File{{Name: "notes/b c.txt", Size: 5}}})
	require.NoError(t, err)
	s := string(got)
	require.Contains(t, s, "1 exported file, 3 B (3 bytes).")
	require.Contains(t, s, "Added to the package by hand")
	require.Contains(t, s, "| [notes/b c.txt](notes/b%20c.txt) | 5 B | 5 |")
	require.Less(t, strings.Index(s, "a.csv"), strings.Index(s, "notes/b c.txt"))
}
