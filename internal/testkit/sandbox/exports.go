package sandbox

import (
	"bytes"
	"crypto/md5" //nolint:gosec // S3's ETag of a single-part object is its MD5; not used for security
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"benchling-webhook/internal/testkit/faultserver"
	"benchling-webhook/internal/testkit/samplezip"
)

const downloadPrefix = "/download/"

// ExportSpec says how exports of one entry behave. The zero value succeeds
// after Options.ExportDelay with a small generated archive.
type ExportSpec struct {
	// Zip is the archive the download URL serves; nil means a small
	// generated one (a few files, one of them in a folder), the same bytes
	// for the same entry id. The sandbox keeps, and never modifies, Zip;
	// the caller must not modify it either.
	Zip []byte
	// Fail makes the task end FAILED with a message instead.
	Fail bool
	// Never keeps the task RUNNING forever.
	Never bool
	// Delay, if non-zero, overrides Options.ExportDelay; negative means the
	// task is done at once.
	Delay time.Duration
}

// task is an export task.
type task struct {
	id      string
	entryID string
	spec    ExportSpec
	done    time.Time // end of RUNNING
	dl      *download // set when SUCCEEDED was first reported; replaced once expired
}

// download is one presigned download URL.
type download struct {
	token   string
	entryID string
	zip     []byte // nil: generated for entryID
	sig     string // X-Amz-Signature the URL must carry
	issued  time.Time
	expires time.Time
}

// SetExport sets how exports of entryID started from now on behave. Tasks
// already started keep their behaviour.
func (s *Server) SetExport(entryID string, spec ExportSpec) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.exportSpecs[entryID] = spec
}

// ExpireDownloads makes every download URL, issued or future, answer 403
// AccessDenied "Request has expired" while on is true, like an expired S3
// presigned URL.
func (s *Server) ExpireDownloads(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noDownloads = on
}

// ExpireIssuedDownloads makes every download URL issued so far answer 403
// "Request has expired" from now on. Unlike [Server.ExpireDownloads] the
// next getTask of a finished task answers with a new, valid URL.
func (s *Server) ExpireIssuedDownloads() {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.downloads {
		if now.Before(d.expires) {
			d.expires = now
		}
	}
}

// ExpireNextDownloads makes the next n download URLs issued expire as
// they are issued (a link read just before it expired, or a task retried a
// day later), so the download they are given is refused with 403 "Request
// has expired", and the getTask after it presigns a new one.
func (s *Server) ExpireNextDownloads(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireNext = n
}

// DownloadURLs returns every download URL issued so far, in full (their
// signatures included), for tests that check a URL leaked nowhere.
func (s *Server) DownloadURLs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.downloads))
	for _, d := range s.downloads {
		out = append(out, s.downloadURL(d))
	}
	return out
}

// handleExport implements POST /api/v2/exports (operation exportItem:
// ExportItemRequest -> 202 AsyncTaskLink, 400 BadRequestError).
func (s *Server) handleExport(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ID *string `json:"id"`
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeBadRequest(w, "Invalid request body: %v.", err)
		return
	}
	if req.ID == nil || *req.ID == "" {
		writeBadRequest(w, "id is required.")
		return
	}
	id := *req.ID
	now := time.Now()

	s.mu.Lock()
	_, ok := s.entries[id]
	spec := s.exportSpecs[id]
	t := &task{id: newUUID(), entryID: id, spec: spec}
	delay := spec.Delay
	if delay == 0 {
		delay = s.opts.ExportDelay
	}
	t.done = now.Add(max(delay, 0))
	if ok {
		s.tasks[t.id] = t
	}
	s.mu.Unlock()

	if !ok {
		writeError(w, http.StatusBadRequest, apiError{InvalidID: id, Message: "Item " + id + " not found.", Type: typeInvalidRequest})
		return
	}
	writeJSON(w, http.StatusAccepted, struct {
		TaskID string `json:"taskId"`
	}{t.id})
}

// taskResponse is an AsyncTask.
type taskResponse struct {
	Status   string `json:"status"`
	Message  string `json:"message,omitempty"`
	Response *struct {
		DownloadURL string `json:"downloadURL"`
	} `json:"response,omitempty"`
}

// handleGetTask implements GET /api/v2/tasks/{task_id} (operation getTask:
// 200 AsyncTask, 404 NotFoundError).
func (s *Server) handleGetTask(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("task_id")
	now := time.Now()
	s.mu.Lock()
	t, ok := s.tasks[id]
	var resp taskResponse
	switch {
	case !ok:
	case t.spec.Never || now.Before(t.done):
		resp.Status = "RUNNING"
	case t.spec.Fail:
		resp.Status = "FAILED"
		resp.Message = "Export of " + t.entryID + " failed: the sandbox was told to fail it."
	default:
		switch {
		case t.dl == nil:
			t.dl = s.newDownload(t, t.done)
		case !now.Before(t.dl.expires):
			// Once a link has expired, asking again presigns a new one
			// (an assumption: Benchling documents no renewal).
			t.dl = s.newDownload(t, now)
		}
		resp.Status = "SUCCEEDED"
		resp.Response = &struct {
			DownloadURL string `json:"downloadURL"`
		}{s.downloadURL(t.dl)}
	}
	s.mu.Unlock()
	if !ok {
		writeNotFound(w, "Task", id)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// newDownload registers a download of a finished task, issued at issued:
// the first one when the task finished, so its expiry does not depend on
// when it was polled. s.mu must be held.
func (s *Server) newDownload(t *task, issued time.Time) *download {
	d := &download{
		token:   randomText(),
		entryID: t.entryID,
		zip:     t.spec.Zip,
		sig:     randomHex(32),
		issued:  issued.UTC(),
	}
	d.expires = d.issued.Add(s.opts.DownloadTTL)
	if s.expireNext > 0 {
		s.expireNext--
		d.expires = d.issued
	}
	s.downloads[d.token] = d
	return d
}

// downloadURL returns a URL shaped like an S3 presigned GET URL.
func (s *Server) downloadURL(d *download) string {
	q := url.Values{}
	q.Set("response-content-disposition", "attachment")
	q.Set("X-Amz-Algorithm", "AWS4-HMAC-SHA256")
	q.Set("X-Amz-Credential", "SANDBOXACCESSKEY/"+d.issued.Format("20060102")+"/us-east-1/s3/aws4_request")
	q.Set("X-Amz-Date", d.issued.Format("20060102T150405Z"))
	q.Set("X-Amz-Expires", strconv.Itoa(int(s.opts.DownloadTTL/time.Second)))
	q.Set("X-Amz-SignedHeaders", "host")
	q.Set("X-Amz-Signature", d.sig)
	return s.url + downloadPrefix + d.token + "/" + url.PathEscape(d.entryID) + ".zip?" + q.Encode()
}

// handleDownload serves an export archive like S3 serves a presigned GET:
// Range, If-Range and conditional requests through [http.ServeContent],
// ETag and Last-Modified, and S3 XML errors (404 NoSuchKey for an unknown
// token, 403 for a missing or wrong signature and for an expired URL).
func (s *Server) handleDownload(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	s.mu.Lock()
	d, ok := s.downloads[r.PathValue("token")]
	expiredAll := s.noDownloads
	var expires time.Time
	if ok {
		expires = d.expires // ExpireIssuedDownloads may change it
	}
	s.mu.Unlock()
	sig := r.URL.Query().Get("X-Amz-Signature")
	switch {
	case !ok:
		writeS3Error(w, r, http.StatusNotFound, faultserver.S3Error{Key: r.URL.Path})
		return
	case sig == "":
		writeS3Error(w, r, http.StatusForbidden, faultserver.S3Error{})
		return
	case sig != d.sig:
		writeS3Error(w, r, http.StatusForbidden, faultserver.S3Error{
			Code:    "SignatureDoesNotMatch",
			Message: "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
		})
		return
	case expiredAll || !now.Before(expires):
		writeS3Error(w, r, http.StatusForbidden, faultserver.S3Error{
			Code:       "AccessDenied",
			Message:    "Request has expired",
			XAmzExpire: strconv.Itoa(int(s.opts.DownloadTTL / time.Second)),
			Expires:    expires.UTC().Format("2006-01-02T15:04:05Z"),
			ServerTime: now.UTC().Format("2006-01-02T15:04:05Z"),
		})
		return
	}
	zip := d.zip
	if zip == nil {
		var err error
		if zip, err = s.sampleArchive(d.entryID); err != nil {
			writeS3Error(w, r, http.StatusInternalServerError, faultserver.S3Error{})
			return
		}
	}
	sum := md5.Sum(zip) //nolint:gosec // see import
	h := w.Header()
	h.Set("Content-Type", "application/zip")
	h.Set("Content-Disposition", `attachment; filename="`+d.entryID+`.zip"`)
	h.Set("ETag", `"`+hex.EncodeToString(sum[:])+`"`)
	h.Set("x-amz-request-id", randomText()[:16])
	http.ServeContent(w, r, "", d.issued, bytes.NewReader(zip))
}

// sampleArchive returns the generated archive of entryID, generating it on
// first use.
func (s *Server) sampleArchive(entryID string) ([]byte, error) {
	s.mu.Lock()
	b, ok := s.zips[entryID]
	s.mu.Unlock()
	if ok {
		return b, nil
	}
	b, err := SampleArchive(entryID)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.zips[entryID] = b
	return b, nil
}

// SampleArchive returns the archive an export of entryID serves when its
// [ExportSpec] has no Zip: a few small files, the first at the top level
// and the others in a folder, deterministic for entryID.
func SampleArchive(entryID string) ([]byte, error) {
	h := fnv.New64a()
	_, _ = h.Write([]byte(entryID)) // hash writes never fail
	var buf bytes.Buffer
	spec := samplezip.Spec{Files: 5, TotalBytes: 48 << 10, Compressible: 0.6, Seed: h.Sum64()}
	if _, err := samplezip.Write(&buf, spec); err != nil {
		return nil, fmt.Errorf("sandbox: generate archive for %s: %w", entryID, err)
	}
	return buf.Bytes(), nil
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

// newUUID returns a random version 4 UUID, the form of Benchling task ids.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	x := hex.EncodeToString(b[:])
	return x[:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:]
}
