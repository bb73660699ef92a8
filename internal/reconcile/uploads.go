package reconcile

import (
	"context"
	"fmt"
	"time"
)

// abortUploads aborts the multipart uploads below the prefix (packages,
// control objects and all) that were initiated more than
// AbortUploadsAfter before now: what an export killed mid-upload, or an
// S3 outage, left (billed until aborted). No export runs that long: the
// packaging machine stops one after 4 hours. A dry run only counts them.
// It stops at the first error: the next run tries again.
func (r *run) abortUploads(ctx context.Context, now time.Time) error {
	cfg := r.cfg
	if cfg.AbortUploadsAfter < 0 {
		return nil
	}
	prefix := cfg.Prefix + "/"
	ups, err := cfg.Store.ListUploads(ctx, prefix)
	if err != nil {
		return fmt.Errorf("reconcile: list the multipart uploads below %s: %w", prefix, err)
	}
	cutoff := now.Add(-cfg.AbortUploadsAfter)
	for _, u := range ups {
		if !u.Initiated.Before(cutoff) {
			continue
		}
		r.mu.Lock()
		r.sum.OldUploads++
		r.mu.Unlock()
		attrs := []any{"key", u.Key, "uploadId", u.UploadID, "initiated", u.Initiated.UTC().Format(time.RFC3339)}
		if cfg.DryRun {
			cfg.Logger.Info("would abort an old multipart upload", attrs...)
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := cfg.Store.AbortUpload(ctx, u.Key, u.UploadID); err != nil {
			return fmt.Errorf("reconcile: abort an old multipart upload: %w", err)
		}
		r.mu.Lock()
		r.sum.UploadsAborted++
		r.mu.Unlock()
		cfg.Logger.Info("old multipart upload aborted", attrs...)
	}
	return nil
}
