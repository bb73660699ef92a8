package quiltstub

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// golden holds what testdata/tophash.py (quilt3's own code, run by
// python3) printed.
type golden struct {
	Order         []string          `json:"order"`
	Hashes        map[string]string `json:"hashes"`
	TopHash       string            `json:"top_hash"`
	TopHashNoMeta string            `json:"top_hash_no_meta"`
	MetaCompact   string            `json:"meta_compact"`
	MetaManifest  string            `json:"meta_manifest"`
}

func loadGolden(t *testing.T) golden {
	t.Helper()
	b, err := os.ReadFile("testdata/tophash.golden.json")
	require.NoError(t, err)
	var g golden
	require.NoError(t, json.Unmarshal(b, &g))
	return g
}

// goldenFiles are the files of testdata/tophash.py.
func goldenFiles() map[string][]byte {
	return map[string][]byte{"README.md": []byte("# hello\n"), "a/b.csv": []byte("x,y\n1,2\n"), "a-c.txt": {},
		"data/été.bin": bytes.Repeat(func() []byte {
			b := make([]byte, 256)
			for i := range b {
				b[i] = byte(i)
			}
			return b
		}(), 40000)}
}

const goldenUserMeta = `{"z": 1, "a": [1.0, 2.5e-7, 1e16, 123456789012345678901234567890], "s": "caf\u00e9 \ud83d\ude00 \"q\" <&> \u007f", "n": null, "t": true}`

func goldenMeta(t *testing.T, withUserMeta bool) *object {
	t.Helper()
	meta := &object{}
	meta.set("version", "v0")
	if !withUserMeta {
		meta.set("user_meta", nil)
		meta.set("message", nil)
		return meta
	}
	um, err := decodeJSON([]byte(goldenUserMeta))
	require.NoError(t, err)
	meta.set("user_meta", um)
	wf := &object{}
	wf.set("id", "alpha")
	wf.set("config", "s3://b/.quilt/workflows/config.yml")
	meta.set("workflow", wf)
	meta.set("message", "msg")
	return meta
}

func TestChunkedSHA256MatchesQuilt(t *testing.T) {
	g := loadGolden(t)
	for name, data := range goldenFiles() {
		h, err := ChunkedSHA256(bytes.NewReader(data), int64(len(data)))
		require.NoError(t, err)
		assert.Equal(t, g.Hashes[name], h, name)
	}
	_, err := ChunkedSHA256(bytes.NewReader([]byte("abc")), 4)
	assert.Error(t, err, "a short body")
	_, err = ChunkedSHA256(bytes.NewReader([]byte("abcde")), 4)
	assert.Error(t, err, "a longer body")
}

func TestChunkSize(t *testing.T) {
	assert.Equal(t, int64(8<<20), chunkSize(1))
	assert.Equal(t, int64(8<<20), chunkSize(10_000*(8<<20)))
	assert.Equal(t, int64(16<<20), chunkSize(10_000*(8<<20)+1))
}

func TestTopHashMatchesQuilt(t *testing.T) {
	g := loadGolden(t)
	var entries []Entry
	for name, data := range goldenFiles() {
		entries = append(entries, Entry{LogicalKey: name, Size: int64(len(data)), Hash: g.Hashes[name], PhysicalKey: s3URL("b", "p/"+name, "")})
	}
	sortWalkOrder(entries)
	var order []string
	for _, e := range entries {
		order = append(order, e.LogicalKey)
	}
	assert.Equal(t, g.Order, order, "quilt3's walk order")

	m := &Manifest{meta: goldenMeta(t, true), Entries: entries}
	b, err := topHashEncoder.encode(m.meta)
	require.NoError(t, err)
	assert.Equal(t, g.MetaCompact, string(b), "the top hash's JSON of the metadata")
	b, err = manifestEncoder.encode(m.meta)
	require.NoError(t, err)
	assert.Equal(t, g.MetaManifest, string(b), "the manifest's JSON of the metadata")
	top, err := m.TopHash()
	require.NoError(t, err)
	assert.Equal(t, g.TopHash, top)

	m = &Manifest{meta: goldenMeta(t, false), Entries: entries}
	top, err = m.TopHash()
	require.NoError(t, err)
	assert.Equal(t, g.TopHashNoMeta, top)
}

func TestPyFloatRepr(t *testing.T) {
	for in, want := range map[string]string{
		"1.0": "1.0", "1.50": "1.5", "1e2": "100.0", "1e16": "1e+16", "1.5e16": "1.5e+16", "123456789012345.6": "123456789012345.6",
		"0.0001": "0.0001", "0.00001": "1e-05", "-0.0": "-0.0", "2.5e-7": "2.5e-07", "1e400": "Infinity", "-1e400": "-Infinity",
		"0.1": "0.1", "1e15": "1000000000000000.0",
	} {
		got, err := topHashEncoder.number(json.Number(in))
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	_, err := manifestEncoder.number("1e400")
	assert.Error(t, err, "allow_nan=False refuses infinity")
	got, _ := topHashEncoder.number("-0")
	assert.Equal(t, "0", got, "an int")
}

func TestS3URL(t *testing.T) {
	assert.Equal(t, "s3://b/p/a%20b/%C3%A9t%C3%A9%2B%3F.csv", s3URL("b", "p/a b/été+?.csv", ""))
	assert.Equal(t, "s3://b/k?versionId=a%2Bb", s3URL("b", "k", "a+b"))
}
