package quiltstub

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
)

// HashType is the entry hash the packaging engine computes by default
// (quilt's DEFAULT_CHECKSUM_ALGORITHMS = [SHA256_CHUNKED]).
const HashType = "sha2-256-chunked"

// chunkSize is quilt3's checksums.get_checksum_chunksize: 8 MiB, doubled
// while the object would have more than 10,000 parts.
func chunkSize(size int64) int64 {
	c := int64(8 << 20)
	for (size+c-1)/c > 10_000 {
		c *= 2
	}
	return c
}

// ChunkedSHA256 returns the sha2-256-chunked hash of the size bytes read
// from r: the SHA-256 of the concatenated SHA-256 digests of each chunk
// (see chunkSize), base64-encoded; an empty object's is the SHA-256 of
// nothing, hashed once (quilt3 checksums.py, quilt_shared Checksum). It is
// what S3 reports as ChecksumSHA256 of a multipart upload with those parts.
func ChunkedSHA256(r io.Reader, size int64) (string, error) {
	if size == 0 {
		sum := sha256.Sum256(nil)
		return base64.StdEncoding.EncodeToString(sum[:]), nil
	}
	cs := chunkSize(size)
	var digests []byte
	var n int64
	for n < size {
		h := sha256.New()
		m, err := io.CopyN(h, r, min(cs, size-n))
		n += m
		if err != nil {
			return "", fmt.Errorf("quiltstub: hash: read %d of %d bytes: %w", n, size, io.ErrUnexpectedEOF)
		}
		digests = h.Sum(digests)
	}
	if m, _ := io.CopyN(io.Discard, r, 1); m != 0 {
		return "", fmt.Errorf("quiltstub: hash: more than the %d bytes listed", size)
	}
	sum := sha256.Sum256(digests)
	return base64.StdEncoding.EncodeToString(sum[:]), nil
}

// Entry is one file of a package.
type Entry struct {
	// LogicalKey is the key inside the package (relative to the source prefix).
	LogicalKey string
	// PhysicalKey is the object's s3:// URL, as quilt3 writes it.
	PhysicalKey string
	Size        int64
	// Hash is the sha2-256-chunked value (base64).
	Hash string

	key, version string // the object's key and version id
}

// Manifest is a built package: its metadata record and its entries in
// quilt3's walk order.
type Manifest struct {
	meta    *object
	Entries []Entry
}

func (e Entry) hashValue() *object {
	h := &object{}
	h.set("type", HashType)
	h.set("value", e.Hash)
	return h
}

// TopHash computes Package.top_hash (quilt3 packages.py,
// _calculate_top_hash): SHA-256 over the compact, key-sorted JSON of the
// package metadata and then of {hash, logical_key, meta, size} of each
// entry in walk order; physical keys are not hashed.
func (m *Manifest) TopHash() (string, error) {
	h := sha256.New()
	b, err := topHashEncoder.encode(m.meta)
	if err != nil {
		return "", err
	}
	h.Write(b)
	for _, e := range m.Entries {
		part := &object{}
		part.set("hash", e.hashValue())
		part.set("logical_key", e.LogicalKey)
		part.set("meta", &object{})
		part.set("size", json.Number(fmt.Sprint(e.Size)))
		b, err := topHashEncoder.encode(part)
		if err != nil {
			return "", err
		}
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Encode writes the manifest as quilt3's Package._dump does: JSON Lines,
// the metadata record first, then one record per entry.
func (m *Manifest) Encode() ([]byte, error) {
	var out bytes.Buffer
	b, err := manifestEncoder.encode(m.meta)
	if err != nil {
		return nil, err
	}
	out.Write(b)
	out.WriteByte('\n')
	for _, e := range m.Entries {
		rec := &object{}
		rec.set("logical_key", e.LogicalKey)
		rec.set("physical_keys", []value{e.PhysicalKey})
		rec.set("size", json.Number(fmt.Sprint(e.Size)))
		rec.set("hash", e.hashValue())
		rec.set("meta", &object{})
		b, err := manifestEncoder.encode(rec)
		if err != nil {
			return nil, err
		}
		out.Write(b)
		out.WriteByte('\n')
	}
	return out.Bytes(), nil
}

// sortWalkOrder sorts entries as Package.walk yields them: each directory
// level sorted by name, which is comparing the keys' path components in
// turn (so "a/b" comes before "a-c", unlike a plain string sort).
func sortWalkOrder(entries []Entry) {
	sort.Slice(entries, func(i, j int) bool {
		a, b := strings.Split(entries[i].LogicalKey, "/"), strings.Split(entries[j].LogicalKey, "/")
		for k := 0; k < len(a) && k < len(b); k++ {
			if a[k] != b[k] {
				return a[k] < b[k]
			}
		}
		return len(a) < len(b)
	})
}

// s3URL is str(PhysicalKey) for an S3 key: "s3://bucket" + quote("/" + key)
// (urllib.parse.quote, safe "/"), then "?versionId=" and the version id
// (urlencode) if there is one.
func s3URL(bucket, key, version string) string {
	var b strings.Builder
	b.WriteString("s3://" + bucket + "/")
	for _, c := range []byte(key) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', strings.IndexByte("_.-~/", c) >= 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	if version != "" {
		b.WriteString("?versionId=" + url.QueryEscape(version))
	}
	return b.String()
}
