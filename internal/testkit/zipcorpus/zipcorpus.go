// Package zipcorpus builds odd and hostile ZIP archives, each labelled with
// the outcome an extractor must reach on it (testdata/ holds their bytes).
// Design: docs/testkit.md#zipcorpus-odd-and-hostile-zips.
package zipcorpus

//go:generate go test -run ^TestTestdata$ -update .

// Outcome names, the values of Case.Want. Each names the sentinel error an
// extractor is expected to return.
const (
	wantOK               = ""
	errNotZip            = "ErrNotZip"
	errInsecurePath      = "ErrInsecurePath"
	errEncrypted         = "ErrEncrypted"
	errUnsupportedMethod = "ErrUnsupportedMethod"
	errChecksum          = "ErrChecksum"
	errTruncated         = "ErrTruncated"
	errTooLarge          = "ErrTooLarge"
	errTooManyEntries    = "ErrTooManyEntries"
	errOverlap           = "ErrOverlap"
	errDuplicateName     = "ErrDuplicateName"
	errHeaderMismatch    = "ErrHeaderMismatch"
)

// Outcomes lists every value Case.Want may take other than "" (a valid
// archive).
func Outcomes() []string {
	return []string{
		errNotZip, errInsecurePath, errEncrypted, errUnsupportedMethod, errChecksum,
		errTruncated, errTooLarge, errTooManyEntries, errOverlap, errDuplicateName, errHeaderMismatch,
	}
}

// Case is one archive and the outcome it must lead to. Cases are plain
// values; Build may be called any number of times, concurrently, and always
// returns the same bytes in a new slice.
type Case struct {
	// Name is a short kebab-case id, also the testdata file name.
	Name string
	// Want is "" for a valid archive that must extract, or the name of the
	// one error it must be rejected with (see [Outcomes]).
	Want string
	// Build returns the archive bytes.
	Build func() []byte
	// Files maps each expected entry name to its content for valid cases
	// (directories omitted; empty but non-nil for an archive with no
	// files). It is nil for invalid cases.
	Files map[string]string
	// Note says in one line what is odd and why the outcome is right.
	Note string
}

// Cases returns every case, valid ones first. The slice is new on each
// call.
func Cases() []Case {
	var cs []Case
	cs = append(cs, validCases()...)
	cs = append(cs, nameCases()...)
	cs = append(cs, methodCases()...)
	cs = append(cs, integrityCases()...)
	cs = append(cs, notZipCases()...)
	cs = append(cs, structureCases()...)
	return cs
}
