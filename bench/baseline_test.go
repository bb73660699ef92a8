package bench

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/klauspost/compress/zip"
)

// runBaseline does what the old Lambda (process-export.ts) did, in Go: GET
// the whole ZIP into memory, open it from a bytes.Reader, and start every
// upload at once, one goroutine per entry and no limit, each entry read
// fully into memory (the Node code awaited entry.buffer()) and then sent
// with one PutObject. The decompressor is klauspost's, the same as the
// job's, so the comparison is about the architecture, not the inflater.
//
// Flags: -url (the ZIP), -bucket, -prefix.
func runBaseline(ctx context.Context, args []string) (roleResult, error) {
	fs := flag.NewFlagSet(roleBaseline, flag.ContinueOnError)
	url := fs.String("url", "", "URL of the export ZIP")
	bucket := fs.String("bucket", "", "destination bucket")
	prefix := fs.String("prefix", "", "key prefix")
	if err := fs.Parse(args); err != nil {
		return roleResult{}, err
	}
	client, err := newS3Client(ctx)
	if err != nil {
		return roleResult{}, err
	}

	var res roleResult
	start := time.Now()
	data, err := downloadAll(ctx, *url)
	if err != nil {
		return res, err
	}
	res.DownloadMs = ms(time.Since(start))
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return res, fmt.Errorf("open archive: %w", err)
	}

	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, f := range zr.File {
		if strings.HasSuffix(f.Name, "/") {
			continue
		}
		res.Files++
		res.Bytes += int64(f.UncompressedSize64)
		wg.Go(func() {
			if err := putEntry(ctx, client, *bucket, *prefix, f); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	res.DurationMs = ms(time.Since(start))
	if len(errs) > 0 {
		res.Failed = len(errs)
		return res, fmt.Errorf("%d of %d uploads failed, the first: %w", len(errs), res.Files, errors.Join(errs[:min(3, len(errs))]...))
	}
	return res, nil
}

// downloadAll reads the whole body at url into memory.
func downloadAll(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("download %s: %s", url, resp.Status)
	}
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", url, err)
	}
	return data, nil
}

// putEntry reads one entry into memory and stores it with one PutObject.
func putEntry(ctx context.Context, client *s3.Client, bucket, prefix string, f *zip.File) error {
	rc, err := f.Open()
	if err != nil {
		return fmt.Errorf("open entry %q: %w", f.Name, err)
	}
	buf, err := io.ReadAll(rc)
	_ = rc.Close() // read-only
	if err != nil {
		return fmt.Errorf("read entry %q: %w", f.Name, err)
	}
	key := objectKey(prefix, f.Name)
	if _, err := client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(bucket),
		Key:    aws.String(key),
		Body:   bytes.NewReader(buf),
	}); err != nil {
		return fmt.Errorf("put s3://%s/%s: %w", bucket, key, err)
	}
	return nil
}
