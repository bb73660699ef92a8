package benchling

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net/url"
	"strconv"
	"time"
)

// Entry is the part of a Benchling notebook entry the jobs use.
type Entry struct {
	// ID is the entry's API id, "etr_…".
	ID string
	// DisplayID is what people see, "EXP25000001".
	DisplayID string
	// Name is the entry's name.
	Name string
	// ModifiedAt is when the entry last changed (Benchling gives
	// microseconds).
	ModifiedAt time.Time
	// WebURL is the entry's page in Benchling.
	WebURL string
}

// wireEntry is an entry as the API sends it.
type wireEntry struct {
	ID         string `json:"id"`
	DisplayID  string `json:"displayId"`
	Name       string `json:"name"`
	ModifiedAt string `json:"modifiedAt"`
	WebURL     string `json:"webURL"`
}

func (w wireEntry) entry() (Entry, error) {
	if w.ID == "" {
		return Entry{}, errors.New("an entry without an id")
	}
	t, err := time.Parse(time.RFC3339Nano, w.ModifiedAt)
	if err != nil {
		return Entry{}, fmt.Errorf("entry %s: modifiedAt %q is not an RFC 3339 time", w.ID, w.ModifiedAt)
	}
	return Entry{ID: w.ID, DisplayID: w.DisplayID, Name: w.Name, ModifiedAt: t.UTC(), WebURL: w.WebURL}, nil
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
				Entries   []wireEntry `json:"entries"`
				NextToken string      `json:"nextToken"`
			}
			if err := c.getJSON(ctx, entriesPath, q, &resp); err != nil {
				yield(Entry{}, fmt.Errorf("list entries (page %d): %w", page, err))
				return
			}
			c.cfg.Logger.Debug("entries page", "page", page, "entries", len(resp.Entries), "more", resp.NextToken != "")
			for _, w := range resp.Entries {
				e, err := w.entry()
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
		Entry wireEntry `json:"entry"`
	}
	if err := c.getJSON(ctx, entriesPath+"/"+url.PathEscape(id), nil, &resp); err != nil {
		return Entry{}, fmt.Errorf("get entry %s: %w", id, err)
	}
	e, err := resp.Entry.entry()
	if err != nil {
		return Entry{}, fmt.Errorf("get entry %s: benchling: %w", id, err)
	}
	return e, nil
}
