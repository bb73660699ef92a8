package bench

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/zip"
	"golang.org/x/sync/errgroup"

	"benchling-webhook/internal/store"
)

// ceilingPartSize is the multipart part size of the ceiling's uploads,
// the job's default: entries up to it go up with one PutObject, larger
// ones as multipart uploads in parts of this size.
const ceilingPartSize = 5 << 20

// defaultCeilingSettings are the upload settings the ceiling tries, as
// "<entries at once>x<parts of one entry at once>"; the fastest counts.
const defaultCeilingSettings = "4x1,8x1,16x1,8x4"

// item is one entry loaded into memory.
type item struct {
	key  string
	data []byte
	crc  uint32
}

// runCeiling is the upload-only upper bound. Untimed, it reads every entry
// of the local ZIP, decompressed, into memory. Then, for each setting, it
// uploads them all through the job's own S3 store (store.S3: PutObject up to
// the part size, the transfer manager above it, the archive's CRC-32 sent
// along) with that many entries, and parts per entry, in flight, and times
// it. Between trials it deletes what it stored (untimed), so every trial
// starts from an empty prefix; the last trial's objects stay for the caller
// to verify. It reports the fastest trial.
//
// Flags: -zip (local path), -bucket, -prefix, -settings.
func runCeiling(ctx context.Context, args []string) (roleResult, error) {
	fs := flag.NewFlagSet(roleCeiling, flag.ContinueOnError)
	zipPath := fs.String("zip", "", "path of the export ZIP")
	bucket := fs.String("bucket", "", "destination bucket")
	prefix := fs.String("prefix", "", "key prefix")
	settingsFlag := fs.String("settings", defaultCeilingSettings, "comma-separated <entries>x<parts> upload settings to try")
	if err := fs.Parse(args); err != nil {
		return roleResult{}, err
	}
	settings, err := parseSettings(*settingsFlag)
	if err != nil {
		return roleResult{}, err
	}
	client, err := newS3Client(ctx)
	if err != nil {
		return roleResult{}, err
	}

	var res roleResult
	start := time.Now()
	items, err := loadItems(*zipPath, *prefix)
	if err != nil {
		return res, err
	}
	res.LoadMs = ms(time.Since(start))
	for _, it := range items {
		res.Files++
		res.Bytes += int64(len(it.data))
	}

	keys := make([]string, len(items))
	for i, it := range items {
		keys[i] = it.key
	}
	for i, s := range settings {
		if i > 0 {
			if err := deleteKeys(ctx, client, *bucket, keys); err != nil {
				return res, fmt.Errorf("clear between trials: %w", err)
			}
		}
		sink := store.NewS3(client, store.S3Options{Bucket: *bucket, PartSize: ceilingPartSize, PartConcurrency: s.parts})
		t := time.Now()
		if err := uploadItems(ctx, sink, items, s.entries); err != nil {
			return res, fmt.Errorf("trial %s: %w", s, err)
		}
		d := ms(time.Since(t))
		res.Trials = append(res.Trials, trial{Setting: s.String(), DurationMs: d})
		if res.Best == "" || d < res.DurationMs {
			res.Best, res.DurationMs = s.String(), d
		}
	}
	return res, nil
}

// setting is one ceiling upload configuration.
type setting struct {
	entries int // entries uploaded at once
	parts   int // parts of one multipart upload sent at once
}

func (s setting) String() string { return fmt.Sprintf("%dx%d", s.entries, s.parts) }

// parseSettings parses "8x1,16x1".
func parseSettings(v string) ([]setting, error) {
	var out []setting
	for f := range strings.SplitSeq(v, ",") {
		a, b, ok := strings.Cut(strings.TrimSpace(f), "x")
		e, err1 := strconv.Atoi(a)
		p, err2 := strconv.Atoi(b)
		if !ok || err1 != nil || err2 != nil || e < 1 || p < 1 {
			return nil, fmt.Errorf("bad ceiling setting %q: want <entries>x<parts>, e.g. 8x1", f)
		}
		out = append(out, setting{entries: e, parts: p})
	}
	if len(out) == 0 {
		return nil, errors.New("no ceiling settings")
	}
	return out, nil
}

// loadItems reads every file entry of the ZIP at path into memory,
// decompressed and CRC-checked.
func loadItems(path, prefix string) ([]item, error) {
	zr, err := zip.OpenReader(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer zr.Close()
	items := make([]item, 0, len(zr.File))
	for _, f := range zr.File {
		if strings.HasSuffix(f.Name, "/") {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return nil, fmt.Errorf("open entry %q: %w", f.Name, err)
		}
		buf := make([]byte, f.UncompressedSize64)
		_, err = io.ReadFull(rc, buf)
		if err == nil {
			// The CRC is checked at EOF.
			if n, rerr := rc.Read(make([]byte, 1)); n != 0 || rerr != io.EOF {
				err = fmt.Errorf("want EOF after %d bytes, got %d bytes and %v", len(buf), n, rerr)
			}
		}
		_ = rc.Close() // read-only
		if err != nil {
			return nil, fmt.Errorf("read entry %q: %w", f.Name, err)
		}
		items = append(items, item{key: objectKey(prefix, f.Name), data: buf, crc: f.CRC32})
	}
	return items, nil
}

// uploadItems stores every item through sink with at most entries in flight.
func uploadItems(ctx context.Context, sink *store.S3, items []item, entries int) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(entries)
	for _, it := range items {
		g.Go(func() error {
			_, err := sink.Put(gctx, it.key, bytes.NewReader(it.data), int64(len(it.data)), it.crc)
			return err
		})
	}
	return g.Wait()
}
