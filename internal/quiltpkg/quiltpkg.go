// Package quiltpkg is the layout of the Quilt package a Benchling entry
// becomes: its name, the keys of its own files, the entry-id rule and its
// catalog links. See docs/export.md, "The package".
package quiltpkg

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"benchling-webhook/internal/extract"
)

// The package's own files, at its root, next to the archive's files.
const (
	// ReadmeName is the README job export --readme renders, written last.
	ReadmeName = "README.md"
	// EntryName is the entry as Benchling's API returned it, written by the
	// packaging state machine before the export runs.
	EntryName = "entry.json"
	// InputName is the message that started the packaging, written by the
	// packaging state machine.
	InputName = "input.json"
	// StateName is job reconcile's state object, below the prefix (not
	// below a package).
	StateName = ".reconcile/state.json"

	// ReadmeContentType is the Content-Type README.md is stored with.
	ReadmeContentType = "text/markdown; charset=utf-8"
	// MaxEntryBytes caps the entry.json that is read back: it is metadata,
	// and Benchling's entries are far smaller.
	MaxEntryBytes = 32 << 20
	// MaxPrefixLen is the longest prefix whose own files still have keys
	// within S3's limit ([extract.MaxKeyLen]).
	MaxPrefixLen = extract.MaxKeyLen - 1 - len(StateName)
)

// Reserved returns the names at the package root that the archive must not
// hold (extract's Options.Reserved), as the package writes them itself.
func Reserved() []string { return []string{ReadmeName, EntryName, InputName} }

// CheckPrefix validates a package name used as a key prefix, such as
// "benchling" or "benchling/etr_123", and returns it without trailing
// slashes: the one form every other function here takes. An empty prefix
// is allowed only when allowEmpty is set (the root of a local folder).
func CheckPrefix(prefix string, allowEmpty bool) (string, error) {
	p := strings.TrimRight(prefix, "/")
	switch {
	case p == "" && allowEmpty:
		return "", nil
	case p == "":
		return "", fmt.Errorf("quiltpkg: the package name is empty")
	case len(p) > MaxPrefixLen:
		return "", fmt.Errorf("quiltpkg: package name %q is longer than %d bytes", prefix, MaxPrefixLen)
	}
	if _, err := extract.CheckName(p); err != nil {
		return "", fmt.Errorf("quiltpkg: package name %q is not a safe key prefix (no leading slash, no . or .. elements, no backslashes)", prefix)
	}
	return p, nil
}

// entryIDPattern is what an entry id may look like to become part of a
// package name, a key and an execution name.
var entryIDPattern = regexp.MustCompile(`^etr_[A-Za-z0-9_-]{1,124}$`)

// ValidEntryID reports whether id is an entry id that can be packaged:
// "etr_" and then letters, digits, '_' and '-' (Benchling's are "etr_" and
// letters and digits), 128 characters at most.
func ValidEntryID(id string) bool { return entryIDPattern.MatchString(id) }

// Name is the package name of entry id below prefix: "benchling/etr_123".
func Name(prefix, id string) string { return prefix + "/" + id }

// Key is the key of the package's own file name (such as [ReadmeName]) in
// package pkg; an empty pkg is the root of a local folder.
func Key(pkg, name string) string {
	if pkg == "" {
		return name
	}
	return pkg + "/" + name
}

// StateKey is the key of job reconcile's state object below prefix.
func StateKey(prefix string) string { return Key(prefix, StateName) }

// CheckCatalogHost validates the Quilt catalog's host name, such as
// "catalog.example.com" or "localhost:3000", and returns it without an
// http(s):// scheme or trailing slashes: the form [Links] takes.
func CheckCatalogHost(host string) (string, error) {
	h := strings.TrimRight(strings.TrimPrefix(strings.TrimPrefix(host, "https://"), "http://"), "/")
	if h == "" || strings.ContainsAny(h, "/?#@\\ \t\r\n") {
		return "", fmt.Errorf("quiltpkg: %q is not a host name such as catalog.example.com", host)
	}
	return h, nil
}

// Links are the links to a package, as the old system put them on the
// Benchling canvas (the webhook state machine builds the same ones).
type Links struct {
	Catalog   string // https://{catalog}/b/{bucket}/packages/{package}
	Revise    string // Catalog + "?action=revisePackage" (the drop zone)
	QuiltSync string // quilt+s3://{bucket}#package={package}&catalog={catalog}
}

// CatalogLinks returns the links of package pkg in bucket. catalogHost is
// as [CheckCatalogHost] returns it; without one, Catalog and Revise are
// empty and QuiltSync has no catalog parameter. The bucket and each
// element of the package name are path-escaped in the catalog URL (a
// no-op for valid Quilt names).
func CatalogLinks(catalogHost, bucket, pkg string) Links {
	var l Links
	sync := "quilt+s3://" + bucket + "#package=" + pkg
	if catalogHost == "" {
		l.QuiltSync = sync
		return l
	}
	segs := strings.Split(pkg, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	l.Catalog = "https://" + catalogHost + "/b/" + url.PathEscape(bucket) + "/packages/" + strings.Join(segs, "/")
	l.Revise = l.Catalog + "?action=revisePackage"
	l.QuiltSync = sync + "&catalog=" + catalogHost
	return l
}
