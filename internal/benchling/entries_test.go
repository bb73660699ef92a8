package benchling

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"benchling-webhook/internal/exitcode"
)

// fixtureEntry decodes testdata/entry.json, a real GET /api/v2/entries/{id}
// answer (internal/render and internal/cli use it too).
func fixtureEntry(t *testing.T) Entry {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "entry.json"))
	require.NoError(t, err)
	e, err := DecodeEntry(b)
	require.NoError(t, err)
	return e
}

func TestUserString(t *testing.T) {
	for want, u := range map[string]User{
		"Ernest Prabhakar <eprabhakar@ent_9CIv9U8P>": {ID: "ent_9CIv9U8P", Name: "Ernest Prabhakar", Handle: "eprabhakar"},
		"Ann <ann>":   {Name: "Ann", Handle: "ann"},
		"Ann <ent_1>": {Name: "Ann", ID: "ent_1"},
		"Ann":         {Name: "Ann"},
		"<ann@ent_1>": {Handle: "ann", ID: "ent_1"},
		"":            {},
	} {
		require.Equal(t, want, u.String())
	}
}

func TestDecodeEntryFixture(t *testing.T) {
	e := fixtureEntry(t)
	require.Equal(t, "etr_0uKCQZ8f", e.ID)
	require.Equal(t, "EXP25000007", e.DisplayID)
	require.Equal(t, "quiltable", e.Name)
	require.Equal(t, "lib_uz14ul16", e.FolderID)
	require.Equal(t, "https://quilt-dtt.benchling.com/api/v2/entries/etr_0uKCQZ8f", e.APIURL)
	require.Equal(t, "2025-03-24T21:34:16.262367+00:00", e.CreatedAt)
	require.Equal(t, time.Date(2025, 3, 30, 23, 37, 22, 777296000, time.UTC), e.ModifiedAt)
	require.Equal(t, "2025-03-30T23:37:22.777296+00:00", FormatTime(e.ModifiedAt), "as Benchling wrote it")
	require.Equal(t, User{ID: "ent_9CIv9U8P", Name: "Ernest Prabhakar", Handle: "eprabhakar"}, e.Creator)
	require.Equal(t, []User{e.Creator}, e.Authors)
	require.Equal(t, Schema{ID: "ts_sWLj9kNl", Name: "Quiltable"}, e.Schema)
	require.Equal(t, "tmpl_1ZdkRpdd", e.EntryTemplateID)
	require.Equal(t, 1, e.Days)
	require.Len(t, e.Fields, 14)
	require.Equal(t, Field{DisplayValue: "-1", Type: "integer"}, e.Fields["Sentinel"])
	require.Equal(t, Field{Type: "text"}, e.Fields["platform"], "null displayValue is empty")

	// The bare object (what the state machine stores) decodes the same.
	b, err := os.ReadFile(filepath.Join("testdata", "entry.json"))
	require.NoError(t, err)
	var start, end = strings.Index(string(b), `"entry": `) + len(`"entry": `), strings.LastIndex(string(b), "}")
	bare, err := DecodeEntry(b[start:end])
	require.NoError(t, err)
	require.Equal(t, e, bare)
}

func TestDecodeEntryLenient(t *testing.T) {
	e, err := DecodeEntry([]byte(`{"id":"etr_1","name":42,"displayId":null,"creator":"nobody","authors":[null,{"name":"A"},7],
		"schema":[],"fields":{"f":{"displayValue":["x",1]},"g":"oops"},"days":{},"unknown":{"deep":[1,2]}}`))
	require.NoError(t, err)
	require.Equal(t, Entry{
		ID: "etr_1", Name: "42", Authors: []User{{Name: "A"}},
		Fields: map[string]Field{"f": {DisplayValue: `["x",1]`}, "g": {}},
	}, e)
	e, err = DecodeEntry([]byte(`{"entry":{"id":"etr_2"},"extra":1}`))
	require.NoError(t, err)
	require.Equal(t, "etr_2", e.ID)
	for _, at := range []string{`"yesterday"`, `null`, `7`, `""`} {
		e, err = DecodeEntry([]byte(`{"id":"etr_3","modifiedAt":` + at + `}`))
		require.NoError(t, err, at)
		require.True(t, e.ModifiedAt.IsZero(), "modifiedAt %s is no time", at)
	}
	e, err = DecodeEntry([]byte(`{"id":"etr_4","modifiedAt":"2025-03-01T10:00:00.5+01:00"}`))
	require.NoError(t, err)
	require.Equal(t, time.Date(2025, 3, 1, 9, 0, 0, 5e8, time.UTC), e.ModifiedAt)
}

func TestDecodeEntryErrors(t *testing.T) {
	tests := map[string]struct {
		in   string
		want string
	}{
		"empty":         {"", "unexpected end of JSON input"},
		"not json":      {"<html>", "at byte 1: invalid character '<'"},
		"truncated":     {`{"entry":{"id":"etr_1"`, "unexpected end of JSON input"},
		"array":         {`[{"id":"etr_1"}]`, "cannot unmarshal array"},
		"string":        {`"etr_1"`, "cannot unmarshal string"},
		"null":          {"null", "null instead of an object"},
		"entry null":    {`{"entry":null}`, `"entry" is not an object`},
		"entry string":  {`{"entry":"etr_1"}`, `"entry" is not an object`},
		"no id":         {`{"entry":{"name":"x"}}`, `no "id"`},
		"blank id":      {`{"id":"  "}`, `no "id"`},
		"null id":       {`{"id":null}`, `no "id"`},
		"empty object":  {`{}`, `no "id"`},
		"trailing junk": {`{"id":"etr_1"} x`, "invalid character 'x'"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := DecodeEntry([]byte(tc.in))
			require.ErrorIs(t, err, ErrInvalidEntry)
			require.ErrorContains(t, err, tc.want)
			require.True(t, strings.HasPrefix(err.Error(), "benchling: "), err.Error())
			require.Equal(t, exitcode.BadInput, exitcode.Resolve(err))
		})
	}
}

func TestFormatTime(t *testing.T) {
	for want, at := range map[string]time.Time{
		"":                                    {},
		"2025-03-30T23:37:22.777296+00:00":    time.Date(2025, 3, 30, 23, 37, 22, 777296000, time.UTC),
		"2025-03-30T23:37:22.000001+00:00":    time.Date(2025, 3, 30, 23, 37, 22, 1000, time.UTC),
		"2025-03-30T23:37:22+00:00":           time.Date(2025, 3, 30, 23, 37, 22, 0, time.UTC),
		"2025-03-30T21:37:22.100000+00:00":    time.Date(2025, 3, 30, 23, 37, 22, 1e8, time.FixedZone("", 2*3600)),
		"2025-03-30T23:37:22.000000001+00:00": time.Date(2025, 3, 30, 23, 37, 22, 1, time.UTC),
	} {
		require.Equal(t, want, FormatTime(at))
		if !at.IsZero() {
			back, err := time.Parse(time.RFC3339Nano, want)
			require.NoError(t, err)
			require.True(t, back.Equal(at), want)
		}
	}
}
