package s3local

import (
	"context"
	"testing"
	"time"

	"benchling-webhook/internal/testkit/testenv"
)

// StartT starts a server in tb.TempDir() and stops it in tb.Cleanup. If the
// binary is missing it skips the test with a hint to run `make tools`,
// unless BW_REQUIRE_S3=1 or CI=true, where it fails the test instead
// ([testenv.Need]). Any other start-up error fails the test. If the test
// fails, the tail of the server's output is logged.
func StartT(tb testing.TB) *Server {
	tb.Helper()
	bin, err := FindBinary()
	testenv.Need(tb, testenv.EnvRequireS3, err)
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout+5*time.Second)
	defer cancel()
	start := time.Now()
	s, err := Start(ctx, Options{Binary: bin, Dir: tb.TempDir()})
	if err != nil {
		tb.Fatalf("s3local: %v", err)
	}
	tb.Logf("s3local: versitygw ready at %s in %s", s.Endpoint, time.Since(start).Round(time.Millisecond))
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("s3local: versitygw output (%s):\n%s", s.logFile, s.tail.String())
		}
		if err := s.Close(); err != nil {
			tb.Errorf("s3local: %v", err)
		}
	})
	return s
}
