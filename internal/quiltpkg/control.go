package quiltpkg

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"time"
)

// ControlDir is the folder, next to the packages below a prefix, that holds
// a package's control objects: what the last export wrote, the staged
// entry.json and input.json of the next one, and the packaging lease.
// Quilt builds a package from every object below the package's own
// prefix, so nothing in here becomes part of a package.
const ControlDir = ".packaging"

// Names of a package's control objects, below [ControlPrefix].
const (
	// RecordName is the package's [Record]: what the last complete export
	// wrote, or the journal of the export under way.
	RecordName = "record.json"
	// LeaseName is the packaging lease: the execution that may write the
	// package now (docs/architecture.md, "One run per entry").
	LeaseName = "lease.json"
	// PendingName marks that a webhook arrived while the lease was held,
	// so the holder packages the entry once more.
	PendingName = "pending"
	// StatusName is the package's canvas status: what its canvases say
	// (updating, sent, up to date, failed, still waiting), written only by
	// the canvas state machine (docs/architecture.md, "Canvas status").
	StatusName = "status.json"
	// CanvasesDir holds one object per Benchling canvas of the entry,
	// [CanvasKey]: the durable entry -> canvases mapping.
	CanvasesDir = "canvases"
)

// CanvasKey is the key of the mapping object of canvas canvasID of package
// pkg: "benchling/.packaging/etr_123/canvases/cnvs_abc.json", whose body is
// a [CanvasMapping]. One object per canvas, written whole (never read,
// changed and written back), so webhooks for two canvases of one entry
// never overwrite each other's.
func CanvasKey(pkg, canvasID string) string {
	return CanvasesPrefix(pkg) + canvasID + ".json"
}

// CanvasesPrefix is the key prefix listing package pkg's canvases
// ([CanvasKey]), with its trailing slash.
func CanvasesPrefix(pkg string) string { return ControlKey(pkg, CanvasesDir) + "/" }

// CanvasMapping is the body of a [CanvasKey] object, as the webhook state
// machine writes it.
type CanvasMapping struct {
	CanvasID  string `json:"canvasId"`
	FeatureID string `json:"featureId,omitempty"`
	AppID     string `json:"appId,omitempty"`
	Entity    string `json:"entity"`
}

// Canvas states, the "state" of the [CanvasStatus] in status.json.
const (
	StatusUpdating     = "updating"      // a webhook was verified; packaging runs
	StatusSent         = "sent"          // every file is written; Quilt is building the package
	StatusUpToDate     = "up to date"    // Quilt's package-revision event arrived
	StatusFailed       = "failed"        // packaging failed; Failure names the packaging machine's Fail state
	StatusStillWaiting = "still waiting" // no revision arrived within the timeout after "sent"
)

// CanvasStatus is the body of ControlKey(pkg, [StatusName]). At and Rank
// order the statuses: a status older than the one stored (At, whole
// seconds, UTC), or of the same second and a lower Rank (updating 0, sent
// 1, the others 2), is not written. The other fields belong to some
// states only.
type CanvasStatus struct {
	State  string `json:"state"`
	Entity string `json:"entity"`
	At     string `json:"at"`
	Rank   int    `json:"rank"`
	// SentAt (sent, still waiting) is when the message went to Quilt;
	// the watch that turns "sent" into "still waiting" carries it as its token.
	SentAt string `json:"sentAt,omitempty"`
	// RevisionTime, TopHash and Link (up to date) describe the revision.
	RevisionTime string `json:"revisionTime,omitempty"`
	TopHash      string `json:"topHash,omitempty"`
	Link         string `json:"link,omitempty"`
	// Failure and Reason (failed): the Fail state's name, and what failed in words.
	Failure string `json:"failure,omitempty"`
	Reason  string `json:"reason,omitempty"`
	// Run is the name of the execution that reported the status.
	Run string `json:"run,omitempty"`
}

// ControlPrefix is the key prefix of package pkg's control objects:
// "benchling/.packaging/etr_123" for "benchling/etr_123", and
// ".packaging/etr_123" for a package name of one element (a local folder).
func ControlPrefix(pkg string) string {
	dir, leaf := path.Split(pkg)
	if leaf == "" {
		leaf = "package"
	}
	return dir + ControlDir + "/" + leaf
}

// ControlKey is the key of control object name (such as [RecordName], or
// [EntryName] for the staged entry.json) of package pkg.
func ControlKey(pkg, name string) string { return ControlPrefix(pkg) + "/" + name }

// Record states.
const (
	// RecordComplete: every file in Files is in place, README.md last.
	RecordComplete = "complete"
	// RecordInProgress: an export is writing Planned; Previous is what the
	// package held before it, so a rerun knows what may be stale.
	RecordInProgress = "in-progress"
)

// Record is what an export wrote to a package, kept at
// ControlKey(pkg, RecordName). A package is complete when its record is
// [RecordComplete] and every file in it is in place as recorded.
type Record struct {
	Version     int          `json:"version"` // 1
	Package     string       `json:"package"`
	State       string       `json:"state"`
	Run         string       `json:"run,omitempty"` // who wrote it: an execution name, or "job export" with a time
	StartedAt   time.Time    `json:"startedAt"`
	CompletedAt *time.Time   `json:"completedAt,omitempty"`
	Files       []RecordFile `json:"files,omitempty"`    // complete: every file the export wrote, its own files included
	Planned     []string     `json:"planned,omitempty"`  // in progress: every key the export will write
	Previous    []RecordFile `json:"previous,omitempty"` // in progress: the files of the last complete record

	// EntryModifiedAt is the modifiedAt of the entry version the export
	// packages (its entry.json's): job reconcile compares it with
	// Benchling's without reading entry.json. Zero in a record without
	// it; reconcile then reads entry.json.
	EntryModifiedAt time.Time `json:"entryModifiedAt,omitzero"`
}

// RecordFile is one file of a [Record], as stored.
type RecordFile struct {
	Key       string `json:"key"`
	Size      int64  `json:"size"`
	CRC32     uint32 `json:"crc32"`
	ETag      string `json:"etag,omitempty"`
	VersionID string `json:"versionId,omitempty"`
	// Unfinished, in Previous, marks a key that a run which died had
	// planned and no complete export holds: it may exist, and goes when
	// the next export does not write it.
	Unfinished bool `json:"unfinished,omitempty"`
}

// ErrInvalidRecord is a record that cannot be decoded or is not version 1.
var ErrInvalidRecord = errors.New("quiltpkg: invalid package record")

// DecodeRecord decodes a record and checks its version and state.
func DecodeRecord(b []byte) (Record, error) {
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return Record{}, fmt.Errorf("%w: %w", ErrInvalidRecord, err)
	}
	if r.Version != 1 || (r.State != RecordComplete && r.State != RecordInProgress) {
		return Record{}, fmt.Errorf("%w: version %d, state %q", ErrInvalidRecord, r.Version, r.State)
	}
	return r, nil
}

// Encode returns the record as indented JSON.
func (r Record) Encode() ([]byte, error) {
	r.Version = 1
	return json.MarshalIndent(r, "", "  ")
}
