// Package quiltpkg is the layout of the Quilt package a Benchling entry
// becomes: its name, the keys of its own files, the entry-id rule and its
// catalog links. See docs/export.md, "The package".
package quiltpkg

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"benchling-webhook/internal/exitcode"
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

// MaxEntryIDLen is the longest entry id that is packaged. Benchling's are
// "etr_" and 8 letters or digits; the bound keeps an id well inside the
// limits of a key (S3: 1,024 bytes) and of an execution name (80).
const MaxEntryIDLen = 64

// EntryIDAlphabet is what may follow "etr_" in an entry id. The state
// machines hold the same set (statemachine/*.asl.json, the Check…Id
// states: States.StringSplit on these characters); a test keeps the two
// equal.
const EntryIDAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// entryIDPattern is Benchling's entry id grammar: "etr_" and letters or
// digits, at most MaxEntryIDLen characters in all.
var entryIDPattern = regexp.MustCompile(`^etr_[A-Za-z0-9]{1,60}$`)

// ValidEntryID reports whether id is an entry id that can be packaged:
// "etr_" followed by ASCII letters and digits only (Benchling's grammar),
// [MaxEntryIDLen] characters at most. Such an id is safe as a key
// element, a URL path element and part of an execution name.
func ValidEntryID(id string) bool { return entryIDPattern.MatchString(id) }

// ErrInvalidEntryID is an entry id that is not Benchling's grammar
// ([ValidEntryID]): bad input, exit 3.
var ErrInvalidEntryID = exitcode.NewSentinel("quiltpkg: not a Benchling entry id (etr_ and letters or digits)", exitcode.BadInput)

// ErrInvalidPackageName is a package name that is not a Quilt package
// name of this deployment's form, "<prefix>/<entry id>" with a valid
// prefix ([CheckPackagePrefix]): a configuration error, exit 2.
var ErrInvalidPackageName = exitcode.NewSentinel("quiltpkg: not a Quilt package name <prefix>/<entry id>", exitcode.Usage)

// prefixPattern is one part of a Quilt package name: quilt3's
// PACKAGE_NAME_FORMAT is ^[\w-]+/[\w-]+$, and here \w is ASCII only (Python's
// would also take other Unicode letters, which we never write).
var prefixPattern = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// CheckPackagePrefix checks the package prefix (PACKAGE_PREFIX,
// ${PackagePrefix}): one part of a Quilt package name, letters, digits,
// '_' and '-' only. A prefix with a slash ("lab/benchling") would make a
// three-part name, which Quilt refuses.
func CheckPackagePrefix(prefix string) error {
	if !prefixPattern.MatchString(prefix) {
		return fmt.Errorf("%w: the prefix %q must be one name part, letters, digits, '_' or '-' (quilt3's PACKAGE_NAME_FORMAT)", ErrInvalidPackageName, prefix)
	}
	return nil
}

// CheckPackageName checks that name is a Quilt package name "prefix/entry"
// whose prefix passes [CheckPackagePrefix] and whose entry is an entry id
// ([ValidEntryID]), and returns the entry id. A name that is not two
// parts, or has a bad prefix, is [ErrInvalidPackageName]; a bad entry
// part is [ErrInvalidEntryID]. The error names the offending part.
func CheckPackageName(name string) (id string, err error) {
	prefix, entry, ok := strings.Cut(name, "/")
	if !ok || strings.Contains(entry, "/") {
		return "", fmt.Errorf("%w: %q is not two parts <prefix>/<entry id>", ErrInvalidPackageName, name)
	}
	if err := CheckPackagePrefix(prefix); err != nil {
		return "", fmt.Errorf("package name %q: %w", name, err)
	}
	if !ValidEntryID(entry) {
		return "", fmt.Errorf("%w: %q in package name %q (at most %d characters)", ErrInvalidEntryID, entry, name, MaxEntryIDLen)
	}
	return entry, nil
}

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

// RevisionLink is the catalog's link to one revision of package pkg in
// bucket, by its top hash: "https://{catalog}/b/{bucket}/packages/{package}/tree/{topHash}".
// catalogHost is as [CheckCatalogHost] returns it; without one there is no
// link (""). The canvas state machine builds the same link for "up to
// date" (a test keeps the two equal).
func RevisionLink(catalogHost, bucket, pkg, topHash string) string {
	l := CatalogLinks(catalogHost, bucket, pkg)
	if l.Catalog == "" || topHash == "" {
		return ""
	}
	return l.Catalog + "/tree/" + url.PathEscape(topHash)
}
