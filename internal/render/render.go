// Package render renders README.md of a Benchling entry's Quilt package
// from the entry and the exported files, with templates compiled in from
// templates/; the output is deterministic. See docs/export.md, "README.md".
package render

import (
	"bytes"
	"cmp"
	"embed"
	"fmt"
	"io/fs"
	"net/url"
	"slices"
	"strings"
	"text/template"
	"unicode"
	"unicode/utf8"

	"github.com/dustin/go-humanize"

	"benchling-webhook/internal/benchling"
	"benchling-webhook/internal/quiltpkg"
)

//go:embed templates
var templateFS embed.FS

// readmeTemplate is the README's path in a Renderer's file system.
const readmeTemplate = "templates/README.md.tmpl"

// MaxListedFiles caps the rows of the README's file table; the rest are
// counted in one line. The totals always cover every file.
const MaxListedFiles = 1000

// Renderer renders from templates. The zero value is not usable; use
// [New]. Safe for concurrent use.
type Renderer struct {
	fs fs.FS // holds readmeTemplate
}

// New returns a Renderer using the embedded templates.
func New() *Renderer { return &Renderer{fs: templateFS} }

// File is one exported file of the package.
type File struct {
	Name string // path below the package root, "/"-separated
	Size int64  // bytes
}

// READMEData is what README.md is rendered from.
type READMEData struct {
	// Entry is the Benchling entry the package holds.
	Entry benchling.Entry
	// Files are the files the export wrote, in any order.
	Files []File
	// Added are the other files of the package: ones no export wrote,
	// added by a person (the catalog's drop zone), in any order.
	Added []File
	// PackageName is the Quilt package name, "benchling/etr_123".
	PackageName string
	// Registry is the S3 bucket of the package; empty for a local folder.
	Registry string
	// CatalogHost is the Quilt catalog's host name, "catalog.example.com",
	// as [quiltpkg.CheckCatalogHost] returns it. When it and Registry are
	// set the README links to the package in the catalog, to its revise
	// page, and to QuiltSync ([quiltpkg.CatalogLinks]).
	CatalogHost string
}

// readmeView is what the README template sees: the data sorted and
// summed, with no maps or pointers, so that a missing value is a zero value
// (rendered "—"), never "<no value>".
type readmeView struct {
	Entry       benchling.Entry
	Fields      []namedField // sorted by name
	Files       []fileRow    // sorted by path, at most MaxListedFiles
	MoreFiles   int          // files left out of Files
	Added       []fileRow    // sorted by path, at most MaxListedFiles
	MoreAdded   int          // added files left out of Added
	FileCount   int
	TotalBytes  int64
	PackageName string
	Registry    string
	HasLinks    bool
	Links       quiltpkg.Links
}

type namedField struct {
	Name string
	benchling.Field
}

type fileRow struct {
	File
	Href string // relative link from README.md, each path element escaped
}

// README renders README.md for d.
func (r *Renderer) README(d READMEData) ([]byte, error) {
	tmpl, err := template.New("README.md.tmpl").Option("missingkey=error").Funcs(funcs).ParseFS(r.fs, readmeTemplate)
	if err != nil {
		return nil, fmt.Errorf("render: parse %s: %w", readmeTemplate, err)
	}
	v := readmeView{
		Entry: d.Entry, PackageName: d.PackageName, Registry: d.Registry, FileCount: len(d.Files),
	}
	for name, f := range d.Entry.Fields {
		v.Fields = append(v.Fields, namedField{Name: name, Field: f})
	}
	slices.SortFunc(v.Fields, func(a, b namedField) int { return strings.Compare(a.Name, b.Name) })
	files := slices.Clone(d.Files)
	slices.SortFunc(files, func(a, b File) int { return cmp.Or(strings.Compare(a.Name, b.Name), cmp.Compare(a.Size, b.Size)) })
	for i, f := range files {
		v.TotalBytes += f.Size
		if i < MaxListedFiles {
			v.Files = append(v.Files, fileRow{File: f, Href: relHref(f.Name)})
		}
	}
	v.MoreFiles = len(files) - len(v.Files)
	added := slices.Clone(d.Added)
	slices.SortFunc(added, func(a, b File) int { return cmp.Or(strings.Compare(a.Name, b.Name), cmp.Compare(a.Size, b.Size)) })
	for i, f := range added {
		if i < MaxListedFiles {
			v.Added = append(v.Added, fileRow{File: f, Href: relHref(f.Name)})
		}
	}
	v.MoreAdded = len(added) - len(v.Added)
	if d.CatalogHost != "" && d.Registry != "" && d.PackageName != "" {
		v.HasLinks, v.Links = true, quiltpkg.CatalogLinks(d.CatalogHost, d.Registry, d.PackageName)
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, v); err != nil {
		return nil, fmt.Errorf("render: %s: %w", readmeTemplate, err)
	}
	return buf.Bytes(), nil
}

// funcs are the template functions.
var funcs = template.FuncMap{
	// md escapes text for Markdown, or gives "—" when it is empty.
	"md": func(s string) string { return orDash(mdEscape(s)) },
	// link makes a Markdown link of already escaped text to url, or
	// returns the text alone when url is empty or not http(s) / quilt+s3.
	"link": func(text, url string) string {
		if dest, ok := linkDest(url); ok {
			return "[" + text + "](" + dest + ")"
		}
		return text
	},
	// user renders a user as "name <handle@id>", escaped, or "—".
	"user": func(u benchling.User) string { return orDash(mdEscape(u.String())) },
	// time renders a time as Benchling writes it, or "" for the zero time.
	"time": benchling.FormatTime,
	// schema renders a schema as "name (id)", escaped, or "—".
	"schema": func(s benchling.Schema) string {
		switch {
		case s.Name != "" && s.ID != "":
			return mdEscape(s.Name) + " (" + mdEscape(s.ID) + ")"
		case s.Name != "" || s.ID != "":
			return mdEscape(s.Name + s.ID)
		}
		return "—"
	},
	// size renders a byte count in IEC units: "1.5 KiB".
	"size": func(n int64) string { return humanize.IBytes(uint64(max(n, 0))) },
	// plural returns word with an "s" unless n is 1.
	"plural": func(n int, word string) string {
		if n == 1 {
			return word
		}
		return word + "s"
	},
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// mdEscape makes s safe as inline Markdown text, in a paragraph, a list item
// or a GitHub table cell, so that it renders as itself:
//   - line breaks and other control characters become spaces (a line break
//     would end a table row, or start a heading or a list), and leading and
//     trailing space is dropped;
//   - characters with a Markdown meaning get a backslash: \ ` * [ ] < > # |
//     ~ & $ ! and _ (except inside a word, where CommonMark gives it no
//     meaning, so that ids such as etr_123 stay readable). `<` and `&`
//     escaped cannot start HTML or an entity; `|` escaped does not split a
//     table cell.
func mdEscape(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	s = strings.TrimSpace(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, strings.ReplaceAll(s, "\r\n", " ")))
	var b strings.Builder
	b.Grow(len(s) + 8)
	var prev rune
	for i, r := range s {
		switch r {
		case '\\', '`', '*', '[', ']', '<', '>', '#', '|', '~', '&', '$', '!':
			b.WriteByte('\\')
		case '_':
			next, _ := utf8.DecodeRuneInString(s[i+1:])
			if !isWordRune(prev) || !isWordRune(next) {
				b.WriteByte('\\')
			}
		}
		b.WriteRune(r)
		prev = r
	}
	return b.String()
}

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// linkDest returns u as a Markdown link destination, if it is an absolute
// http, https or quilt+s3 URL. Characters that would end the destination or
// a table cell are percent-encoded.
func linkDest(u string) (string, bool) {
	p, err := url.Parse(strings.TrimSpace(u))
	if err != nil || p.Host == "" {
		return "", false
	}
	switch strings.ToLower(p.Scheme) {
	case "http", "https", "quilt+s3":
	default:
		return "", false
	}
	return destEscaper.Replace(p.String()), true
}

var destEscaper = strings.NewReplacer(
	" ", "%20", "(", "%28", ")", "%29", "<", "%3C", ">", "%3E", "|", "%7C",
	"`", "%60", `"`, "%22", `\`, "%5C", "[", "%5B", "]", "%5D", "\n", "%0A", "\r", "%0D",
)

// relHref is the relative link from README.md to the file at name.
func relHref(name string) string {
	segs := strings.Split(name, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}
