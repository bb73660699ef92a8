package render

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"benchling-webhook/internal/exitcode"
)

// ErrInvalidEntry is wrapped by every error of [DecodeEntry]: the entry JSON
// is not JSON, not an object, or has no id. It means bad input (exit code
// 3): decoding the same bytes again cannot help.
var ErrInvalidEntry = exitcode.NewSentinel("render: invalid entry JSON", exitcode.BadInput)

// Entry is the part of a Benchling notebook entry that the README shows.
// Field meanings: the Entry schema of Benchling's API
// (https://benchling.com/api/reference#/Entries/getEntry). Missing or null
// values are empty (zero values); times are kept as Benchling wrote them
// (RFC 3339).
type Entry struct {
	ID              string           // "etr_…", never empty after [DecodeEntry]
	DisplayID       string           // "EXP25000007"
	Name            string           // the entry's title
	WebURL          string           // the entry in Benchling's web app
	APIURL          string           // the entry in Benchling's API
	FolderID        string           // "lib_…"
	CreatedAt       string           // RFC 3339
	ModifiedAt      string           // RFC 3339
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

// wireEntry is Entry as it comes from the API. Scalars are lenient (see
// [text]); structured values are decoded one by one by [DecodeEntry], which
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
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return Entry{}, fmt.Errorf("%w: %w", ErrInvalidEntry, jsonError(err))
	}
	if top == nil {
		return Entry{}, fmt.Errorf("%w: null instead of an object", ErrInvalidEntry)
	}
	if inner, ok := top["entry"]; ok {
		if _, hasID := top["id"]; !hasID {
			top = nil
			if err := json.Unmarshal(inner, &top); err != nil || top == nil {
				return Entry{}, fmt.Errorf("%w: \"entry\" is not an object", ErrInvalidEntry)
			}
			data = inner
		}
	}
	var w wireEntry
	if err := json.Unmarshal(data, &w); err != nil {
		// Only a malformed scalar gets here (text accepts any valid JSON).
		return Entry{}, fmt.Errorf("%w: %w", ErrInvalidEntry, jsonError(err))
	}
	id := strings.TrimSpace(string(w.ID))
	if id == "" {
		return Entry{}, fmt.Errorf("%w: no \"id\"", ErrInvalidEntry)
	}
	e := Entry{
		ID: id, DisplayID: string(w.DisplayID), Name: string(w.Name), WebURL: string(w.WebURL),
		APIURL: string(w.APIURL), FolderID: string(w.FolderID), CreatedAt: string(w.CreatedAt),
		ModifiedAt: string(w.ModifiedAt), EntryTemplateID: string(w.EntryTemplateID),
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
