package sandbox

import (
	"cmp"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// entryFixture is a real GET /api/v2/entries/{id} response
// ({"entry": {...}}), the template of every entry the sandbox serves.
//
//go:embed testdata/entry.json
var entryFixture []byte

// timeLayout is how Benchling writes timestamps: microseconds and a
// numeric UTC offset, e.g. "2025-03-30T23:37:22.777296+00:00".
const timeLayout = "2006-01-02T15:04:05.000000-07:00"

// Entry list limits (operation listEntries).
const (
	defaultPageSize = 50
	maxPageSize     = 100
)

// EntryOptions describes an entry added with [Server.AddEntry]. The zero
// value is valid.
type EntryOptions struct {
	// DisplayID is the entry's displayId; "" derives one such as
	// "EXP12345678" from the id.
	DisplayID string
	// Name is the entry's name; "" means "Sandbox entry <id>".
	Name string
	// ModifiedAt is the entry's modifiedAt; zero means now.
	ModifiedAt time.Time
	// Export says how exports of this entry behave.
	Export ExportSpec
}

// entry is one served entry. It is immutable once stored; AddEntry replaces
// it.
type entry struct {
	key  sortKey
	json json.RawMessage // the Entry object
	disp string
}

// sortKey holds the values entries are listed by.
type sortKey struct {
	ID         string    `json:"i"`
	Name       string    `json:"n"`
	CreatedAt  time.Time `json:"c"`
	ModifiedAt time.Time `json:"m"`
}

// AddEntry adds, or replaces, the entry id. It is built from the embedded
// fixture (testdata/entry.json, a real entry) with the id, displayId, name
// and modifiedAt from opt, apiURL and webURL pointing at the sandbox, and
// its app_canvas note naming Options.AppID. opt.Export applies to exports
// started from now on, as with [Server.SetExport].
func (s *Server) AddEntry(id string, opt EntryOptions) {
	if opt.DisplayID == "" {
		h := fnv.New32a()
		_, _ = h.Write([]byte(id)) // hash writes never fail
		opt.DisplayID = fmt.Sprintf("EXP%08d", h.Sum32()%100_000_000)
	}
	if opt.Name == "" {
		opt.Name = "Sandbox entry " + id
	}
	if opt.ModifiedAt.IsZero() {
		opt.ModifiedAt = time.Now()
	}
	opt.ModifiedAt = opt.ModifiedAt.UTC().Truncate(time.Microsecond)

	var doc struct {
		Entry map[string]any `json:"entry"`
	}
	if err := json.Unmarshal(entryFixture, &doc); err != nil {
		panic(fmt.Sprintf("sandbox: parse embedded entry fixture: %v", err)) // embedded file: cannot happen
	}
	e := doc.Entry
	createdAt, err := time.Parse(time.RFC3339Nano, e["createdAt"].(string))
	if err != nil || createdAt.After(opt.ModifiedAt) {
		createdAt = opt.ModifiedAt
	}
	e["id"] = id
	e["displayId"] = opt.DisplayID
	e["name"] = opt.Name
	e["createdAt"] = createdAt.UTC().Format(timeLayout)
	e["modifiedAt"] = opt.ModifiedAt.Format(timeLayout)
	e["apiURL"] = s.url + "/api/v2/entries/" + url.PathEscape(id)
	e["webURL"] = s.url + "/sandbox/f/" + fmt.Sprint(e["folderId"]) + "/" + url.PathEscape(id) + "/edit"
	for _, day := range e["days"].([]any) {
		for _, note := range day.(map[string]any)["notes"].([]any) {
			if n := note.(map[string]any); n["type"] == "app_canvas" {
				n["appId"] = s.opts.AppID
				n["featureId"] = s.opts.FeatureID
			}
		}
	}
	b, err := json.Marshal(e)
	if err != nil {
		panic(fmt.Sprintf("sandbox: marshal entry: %v", err)) // decoded JSON: cannot happen
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.entries[id] = &entry{
		key:  sortKey{ID: id, Name: opt.Name, CreatedAt: createdAt, ModifiedAt: opt.ModifiedAt},
		json: b,
		disp: opt.DisplayID,
	}
	s.exportSpecs[id] = opt.Export
}

func (s *Server) handleGetEntry(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("entry_id")
	s.mu.Lock()
	e, ok := s.entries[id]
	s.mu.Unlock()
	if !ok {
		writeNotFound(w, "Entry", id)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Entry json.RawMessage `json:"entry"`
	}{e.json})
}

// entryOrder is a sort order of the entry list.
type entryOrder struct {
	field string // "modifiedAt", "createdAt" or "name"
	desc  bool
}

// parseOrder parses the sort parameter. Without a suffix, times sort most
// recent first and names alphabetically.
func parseOrder(v string) (entryOrder, bool) {
	if v == "" {
		v = "modifiedAt:desc"
	}
	field, dir, _ := strings.Cut(v, ":")
	switch field {
	case "modifiedAt", "createdAt", "name":
	default:
		return entryOrder{}, false
	}
	switch dir {
	case "":
		return entryOrder{field, field != "name"}, true
	case "asc", "desc":
		return entryOrder{field, dir == "desc"}, true
	}
	return entryOrder{}, false
}

func (o entryOrder) String() string {
	if o.desc {
		return o.field + ":desc"
	}
	return o.field + ":asc"
}

// compare orders a before b (< 0) in o; ties are broken by id so the order
// is total and pagination is stable.
func (o entryOrder) compare(a, b sortKey) int {
	var c int
	switch o.field {
	case "name":
		c = strings.Compare(a.Name, b.Name)
	case "createdAt":
		c = a.CreatedAt.Compare(b.CreatedAt)
	default:
		c = a.ModifiedAt.Compare(b.ModifiedAt)
	}
	c = cmp.Or(c, strings.Compare(a.ID, b.ID))
	if o.desc {
		return -c
	}
	return c
}

// cursor is the content of a nextToken: the order and the key of the last
// entry returned. The next page starts after that key, so entries added or
// changed between pages neither shift nor repeat the ones not yet listed.
type cursor struct {
	Order string  `json:"o"`
	After sortKey `json:"a"`
}

func (c cursor) encode() string {
	b, err := json.Marshal(c)
	if err != nil {
		panic(fmt.Sprintf("sandbox: marshal cursor: %v", err)) // own type: cannot happen
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(tok string) (cursor, bool) {
	var c cursor
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || json.Unmarshal(b, &c) != nil || c.Order == "" {
		return cursor{}, false
	}
	return c, true
}

// timeRange is a modifiedAt filter: "> T", "< T" or "> T AND < U".
type timeRange struct{ after, before time.Time }

var andSep = regexp.MustCompile(`(?i)\s+AND\s+`)

// parseTimeRange parses the modifiedAt query syntax: > and < with an RFC
// 3339 time or a YYYY-MM-DD date (UTC), combined with AND.
func parseTimeRange(v string) (timeRange, error) {
	var tr timeRange
	for _, cond := range andSep.Split(strings.TrimSpace(v), -1) {
		cond = strings.TrimSpace(cond)
		if cond == "" {
			return tr, fmt.Errorf("empty condition in %q", v)
		}
		t, err := parseFilterTime(strings.TrimSpace(cond[1:]))
		if err != nil {
			return tr, err
		}
		switch cond[0] {
		case '>':
			tr.after = t
		case '<':
			tr.before = t
		default:
			return tr, fmt.Errorf("condition %q must start with > or <", cond)
		}
	}
	return tr, nil
}

func parseFilterTime(v string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, v, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a YYYY-MM-DD date", v)
}

func (tr timeRange) contains(t time.Time) bool {
	return (tr.after.IsZero() || t.After(tr.after)) && (tr.before.IsZero() || t.Before(tr.before))
}

// handleListEntries implements GET /api/v2/entries with pageSize,
// nextToken, sort, modifiedAt, name, ids and displayIds. Other filters are
// ignored.
func (s *Server) handleListEntries(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	pageSize := defaultPageSize
	if v := q.Get("pageSize"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > maxPageSize {
			writeBadRequest(w, "pageSize must be an integer from 0 to %d.", maxPageSize)
			return
		}
		pageSize = n
	}
	order, ok := parseOrder(q.Get("sort"))
	if !ok {
		writeBadRequest(w, "Invalid sort %q.", q.Get("sort"))
		return
	}
	var tr timeRange
	if v := q.Get("modifiedAt"); v != "" {
		var err error
		if tr, err = parseTimeRange(v); err != nil {
			writeBadRequest(w, "Invalid modifiedAt filter: %v.", err)
			return
		}
	}
	var after *sortKey
	if tok := q.Get("nextToken"); tok != "" {
		c, ok := decodeCursor(tok)
		if !ok || c.Order != order.String() {
			writeBadRequest(w, "Invalid nextToken.")
			return
		}
		after = &c.After
	}
	ids, displayIDs := listParam(q.Get("ids")), listParam(q.Get("displayIds"))
	name := q.Get("name")

	s.mu.Lock()
	matched := make([]*entry, 0, len(s.entries))
	for _, e := range s.entries {
		switch {
		case !tr.contains(e.key.ModifiedAt),
			name != "" && e.key.Name != name,
			ids != nil && !slices.Contains(ids, e.key.ID),
			displayIDs != nil && !slices.Contains(displayIDs, e.disp),
			after != nil && order.compare(e.key, *after) <= 0:
			continue
		}
		matched = append(matched, e)
	}
	s.mu.Unlock()
	slices.SortFunc(matched, func(a, b *entry) int { return order.compare(a.key, b.key) })

	page := matched[:min(pageSize, len(matched))]
	resp := struct {
		Entries   []json.RawMessage `json:"entries"`
		NextToken string            `json:"nextToken"`
	}{Entries: make([]json.RawMessage, 0, len(page))}
	for _, e := range page {
		resp.Entries = append(resp.Entries, e.json)
	}
	if len(matched) > len(page) {
		c := cursor{Order: order.String()}
		switch {
		case len(page) > 0:
			c.After = page[len(page)-1].key
		case after != nil:
			c.After = *after
		default: // pageSize=0 on the first page: the next page starts at the top
			c.After = beforeAll(order)
		}
		resp.NextToken = c.encode()
	}
	writeJSON(w, http.StatusOK, resp)
}

// beforeAll returns a key that sorts before every entry in o.
func beforeAll(o entryOrder) sortKey {
	if o.desc {
		far := time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
		return sortKey{ID: "\U0010FFFF", Name: "\U0010FFFF", CreatedAt: far, ModifiedAt: far}
	}
	return sortKey{}
}

// listParam splits a comma-separated list parameter; "" gives nil.
func listParam(v string) []string {
	if v == "" {
		return nil
	}
	parts := strings.Split(v, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}
