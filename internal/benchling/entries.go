package benchling

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/url"
	"strconv"
	"strings"
	"time"

	"benchling-webhook/internal/exitcode"
)

// ErrInvalidEntry is wrapped by every error of [DecodeEntry]: the entry JSON
// is not JSON, not an object, or has no id. It means bad input (exit code
// 3): decoding the same bytes again cannot help.
var ErrInvalidEntry = exitcode.NewSentinel("benchling: invalid entry JSON", exitcode.BadInput)

// Entry is a Benchling notebook entry, the part of it the jobs and the
// package's README use. Field meanings: the Entry schema of Benchling's API
// (https://benchling.com/api/reference#/Entries/getEntry). Missing or null
// values are empty (zero values).
type Entry struct {
	ID        string // "etr_…", never empty
	DisplayID string // "EXP25000007"
	Name      string // the entry's title
	WebURL    string // the entry in Benchling's web app
	APIURL    string // the entry in Benchling's API
	FolderID  string // "lib_…"
	// CreatedAt is kept as Benchling wrote it (RFC 3339): it is only shown.
	CreatedAt string
	// ModifiedAt is when the entry last changed, in UTC (Benchling gives
	// microseconds); [FormatTime] writes it back as Benchling does. Zero
	// when entry.json has none, or one that is not an RFC 3339 time.
	ModifiedAt      time.Time
	Creator         User             // who created the entry
	Authors         []User           // in Benchling's order; it defaults to the creator
	Schema          Schema           // zero when the entry has no schema
	EntryTemplateID string           // "tmpl_…", empty when not created from a template
	Fields          map[string]Field // schema fields by name
	Days            int              // number of notebook days
}

// User is a Benchling UserSummary.
type User struct {
	ID     string // "ent_…"
	Name   string // "Ernest Prabhakar"
	Handle string // "eprabhakar"
}

// String returns the user as the old README showed authors,
// "name <handle@id>", leaving out what is missing.
func (u User) String() string {
	addr := u.Handle
	switch {
	case u.Handle != "" && u.ID != "":
		addr = u.Handle + "@" + u.ID
	case u.Handle == "":
		addr = u.ID
	}
	switch {
	case addr == "":
		return u.Name
	case u.Name == "":
		return "<" + addr + ">"
	}
	return u.Name + " <" + addr + ">"
}

// Schema names an entry schema.
type Schema struct {
	ID   string // "ts_…"
	Name string
}

// Field is one schema field value.
type Field struct {
	DisplayValue string // as Benchling shows it; empty when unset
	Type         string // "text", "integer", "dropdown", …
}

// FormatTime writes t as Benchling's API writes its times (Python's
// isoformat in UTC): "2025-03-30T23:37:22.777296+00:00", without the
// fraction when it is zero. The zero time is "".
func FormatTime(t time.Time) string {
	layout := "2006-01-02T15:04:05.000000-07:00"
	switch {
	case t.IsZero():
		return ""
	case t.Nanosecond() == 0:
		layout = "2006-01-02T15:04:05-07:00"
	case t.Nanosecond()%1000 != 0:
		layout = "2006-01-02T15:04:05.000000000-07:00"
	}
	return t.UTC().Format(layout)
}

// wireEntry is Entry as it comes from the API. Scalars are lenient (see
// [text]); structured values are decoded one by one by [decodeEntry], which
// skips one that has an unexpected shape instead of failing.
type wireEntry struct {
	ID              text            `json:"id"`
	DisplayID       text            `json:"displayId"`
	Name            text            `json:"name"`
	WebURL          text            `json:"webURL"`
	APIURL          text            `json:"apiURL"`
	FolderID        text            `json:"folderId"`
	CreatedAt       text            `json:"createdAt"`
	ModifiedAt      text            `json:"modifiedAt"`
	EntryTemplateID text            `json:"entryTemplateId"`
	Creator         json.RawMessage `json:"creator"`
	Authors         json.RawMessage `json:"authors"`
	Schema          json.RawMessage `json:"schema"`
	Fields          json.RawMessage `json:"fields"`
	Days            json.RawMessage `json:"days"`
}

type wireUser struct {
	ID     text `json:"id"`
	Name   text `json:"name"`
	Handle text `json:"handle"`
}

func (u wireUser) user() User {
	return User{ID: string(u.ID), Name: string(u.Name), Handle: string(u.Handle)}
}

type wireField struct {
	DisplayValue text `json:"displayValue"`
	Type         text `json:"type"`
}

// text is a lenient string: a JSON string is itself, null is empty, and
// any other value is kept as its compact JSON text, so an unexpected type
// shows up in the README rather than failing it.
type text string

func (t *text) UnmarshalJSON(b []byte) error {
	switch {
	case bytes.Equal(b, []byte("null")):
		*t = ""
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*t = text(s)
	default:
		var buf bytes.Buffer
		if err := json.Compact(&buf, b); err != nil {
			return err
		}
		*t = text(buf.String())
	}
	return nil
}

// DecodeEntry decodes an entry from the JSON of Benchling's
// GET /api/v2/entries/{id}: either the whole response, {"entry":{…}}, or
// the bare entry object (what the state machine stores as entry.json).
// Unknown fields are ignored, and an optional field that is missing, null
// or of an unexpected shape is left empty; only the id is required. Errors
// wrap [ErrInvalidEntry].
func DecodeEntry(data []byte) (Entry, error) {
	e, _, err := decodeEntry(data)
	return e, err
}

// decodeEntry is [DecodeEntry], and also returns the modifiedAt text as
// Benchling wrote it.
func decodeEntry(data []byte) (Entry, string, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return Entry{}, "", fmt.Errorf("%w: %w", ErrInvalidEntry, jsonError(err))
	}
	if top == nil {
		return Entry{}, "", fmt.Errorf("%w: null instead of an object", ErrInvalidEntry)
	}
	if inner, ok := top["entry"]; ok {
		if _, hasID := top["id"]; !hasID {
			top = nil
			if err := json.Unmarshal(inner, &top); err != nil || top == nil {
				return Entry{}, "", fmt.Errorf("%w: \"entry\" is not an object", ErrInvalidEntry)
			}
			data = inner
		}
	}
	var w wireEntry
	if err := json.Unmarshal(data, &w); err != nil {
		// Only a malformed scalar gets here (text accepts any valid JSON).
		return Entry{}, "", fmt.Errorf("%w: %w", ErrInvalidEntry, jsonError(err))
	}
	id := strings.TrimSpace(string(w.ID))
	if id == "" {
		return Entry{}, "", fmt.Errorf("%w: no \"id\"", ErrInvalidEntry)
	}
	e := Entry{
		ID: id, DisplayID: string(w.DisplayID), Name: string(w.Name), WebURL: string(w.WebURL),
		APIURL: string(w.APIURL), FolderID: string(w.FolderID), CreatedAt: string(w.CreatedAt),
		EntryTemplateID: string(w.EntryTemplateID),
	}
	if t, err := time.Parse(time.RFC3339Nano, string(w.ModifiedAt)); err == nil {
		e.ModifiedAt = t.UTC()
	}
	var creator wireUser
	if lenient(w.Creator, &creator) {
		e.Creator = creator.user()
	}
	var authors []json.RawMessage
	if lenient(w.Authors, &authors) {
		for _, raw := range authors {
			var a wireUser
			if lenient(raw, &a) && a != (wireUser{}) {
				e.Authors = append(e.Authors, a.user())
			}
		}
	}
	var schema struct {
		ID   text `json:"id"`
		Name text `json:"name"`
	}
	if lenient(w.Schema, &schema) {
		e.Schema = Schema{ID: string(schema.ID), Name: string(schema.Name)}
	}
	var fields map[string]json.RawMessage
	if lenient(w.Fields, &fields) && len(fields) > 0 {
		e.Fields = make(map[string]Field, len(fields))
		for name, raw := range fields {
			var f wireField
			if !lenient(raw, &f) {
				f = wireField{}
			}
			e.Fields[name] = Field{DisplayValue: string(f.DisplayValue), Type: string(f.Type)}
		}
	}
	var days []json.RawMessage
	if lenient(w.Days, &days) {
		e.Days = len(days)
	}
	return e, string(w.ModifiedAt), nil
}

// apiEntry decodes one entry of an API answer, which unlike entry.json
// must have a valid modifiedAt (job reconcile compares it, and names
// executions after it).
func apiEntry(raw json.RawMessage) (Entry, error) {
	e, modifiedAt, err := decodeEntry(raw)
	if err != nil {
		// Benchling answered, but not with an entry: exit 1, not bad input.
		return Entry{}, errors.New("an entry without an id")
	}
	if e.ModifiedAt.IsZero() {
		return Entry{}, fmt.Errorf("entry %s: modifiedAt %q is not an RFC 3339 time", e.ID, modifiedAt)
	}
	return e, nil
}

// lenient decodes raw into v and reports whether it did; a missing, null
// or differently shaped value leaves v as it was.
func lenient(raw json.RawMessage, v any) bool {
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return false
	}
	return json.Unmarshal(raw, v) == nil
}

// jsonError adds the byte offset to a syntax error, which encoding/json
// keeps out of its message.
func jsonError(err error) error {
	if se, ok := err.(*json.SyntaxError); ok {
		return fmt.Errorf("at byte %d: %w", se.Offset, err)
	}
	return err
}

// ListOptions selects the entries [Client.ListEntries] lists. The zero
// value lists every entry the app can see.
type ListOptions struct {
	// ModifiedAfter, if set, keeps the entries modified after it (the
	// filter modifiedAt="> <RFC 3339>", in whole seconds rounded down, so
	// an entry modified in the same second is listed too).
	ModifiedAfter time.Time
	// PageSize is the number of entries per request, 1 to [MaxPageSize];
	// 0 means [DefaultPageSize].
	PageSize int
}

// filter is the value of the modifiedAt query parameter.
func (o ListOptions) filter() string {
	if o.ModifiedAfter.IsZero() {
		return ""
	}
	return "> " + o.ModifiedAfter.UTC().Truncate(time.Second).Format(time.RFC3339)
}

// ListEntries lists entries, least recently modified first
// (sort=modifiedAt:asc), page by page with nextToken. Oldest first makes a
// window resumable: an entry modified while the list is being read moves
// to its end and is listed again there, instead of being missed.
//
// The sequence yields each entry with a nil error, or, when a page cannot
// be had after the retries or does not decode, a zero Entry and the error,
// and then stops. Stopping the loop early stops the requests.
func (c *Client) ListEntries(ctx context.Context, opts ListOptions) iter.Seq2[Entry, error] {
	return func(yield func(Entry, error) bool) {
		size := opts.PageSize
		switch {
		case size == 0:
			size = DefaultPageSize
		case size < 1 || size > MaxPageSize:
			yield(Entry{}, fmt.Errorf("%w: page size %d is not between 1 and %d", ErrConfig, size, MaxPageSize))
			return
		}
		q := url.Values{"pageSize": {strconv.Itoa(size)}, "sort": {"modifiedAt:asc"}}
		if f := opts.filter(); f != "" {
			q.Set("modifiedAt", f)
		}
		for page := 1; ; page++ {
			var resp struct {
				Entries   []json.RawMessage `json:"entries"`
				NextToken string            `json:"nextToken"`
			}
			if err := c.getJSON(ctx, entriesPath, q, &resp); err != nil {
				yield(Entry{}, fmt.Errorf("list entries (page %d): %w", page, err))
				return
			}
			c.cfg.Logger.Debug("entries page", "page", page, "entries", len(resp.Entries), "more", resp.NextToken != "")
			for _, raw := range resp.Entries {
				e, err := apiEntry(raw)
				if err != nil {
					yield(Entry{}, fmt.Errorf("list entries (page %d): benchling: %w", page, err))
					return
				}
				if !yield(e, nil) {
					return
				}
			}
			if resp.NextToken == "" {
				return
			}
			q.Set("nextToken", resp.NextToken)
		}
	}
}

// GetEntry returns the entry id. An id Benchling does not know (or the app
// cannot see) is an [*APIError] that matches [ErrNotFound].
func (c *Client) GetEntry(ctx context.Context, id string) (Entry, error) {
	if id == "" {
		return Entry{}, fmt.Errorf("%w: empty entry id", ErrConfig)
	}
	var resp struct {
		Entry json.RawMessage `json:"entry"`
	}
	if err := c.getJSON(ctx, entriesPath+"/"+url.PathEscape(id), nil, &resp); err != nil {
		return Entry{}, fmt.Errorf("get entry %s: %w", id, err)
	}
	e, err := apiEntry(resp.Entry)
	if err != nil {
		return Entry{}, fmt.Errorf("get entry %s: benchling: %w", id, err)
	}
	return e, nil
}
