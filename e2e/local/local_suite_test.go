// Package local_test is the end-to-end suite against the local stack
// (internal/testkit/emulate), run by `make e2e`. See e2e/README.md.
package local_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"benchling-webhook/internal/testkit/emulate"
	"benchling-webhook/internal/testkit/s3local"
	"benchling-webhook/internal/testkit/testenv"
)

func TestLocal(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "e2e: local stack")
}

var (
	// jobBinary is the job binary built for this run.
	jobBinary string
	// shared is the stack used by every spec whose faults cannot leak into
	// another (each uses its own entry ids).
	shared *emulate.Stack
)

var _ = BeforeSuite(func(ctx SpecContext) {
	root, err := testenv.RepoRoot()
	Expect(err).NotTo(HaveOccurred())
	requireTools(root)

	dir, err := os.MkdirTemp("", "bw-e2e-")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(os.RemoveAll, dir)

	jobBinary = filepath.Join(dir, "job")
	build := exec.CommandContext(ctx, "go", "build", "-o", jobBinary, "./cmd/job")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), "go build ./cmd/job:\n%s", out)

	shared = startStack(emulate.Options{})
}, NodeTimeout(3*time.Minute))

// requireTools skips the suite when versitygw or the Node tools are not
// installed, unless CI=true or BW_REQUIRE_S3=1, where it fails instead.
func requireTools(root string) {
	_, errS3 := s3local.FindBinary()
	_, _, errNode := emulate.NodeTools(root)
	err := errors.Join(errS3, errNode)
	if err == nil {
		return
	}
	if testenv.Required(testenv.EnvRequireS3) {
		Fail("the local stack needs its tools: " + err.Error())
	}
	Skip("the local stack needs `make tools` (bin/versitygw and tools/node/node_modules): " + err.Error())
}

// startStack starts a local stack with opts (Dir, JobBinary and the OAuth
// client filled in) and stops it when the current container ends.
func startStack(opts emulate.Options) *emulate.Stack {
	GinkgoHelper()
	dir, err := os.MkdirTemp("", "bw-e2e-stack-")
	Expect(err).NotTo(HaveOccurred())
	opts.Dir = dir
	opts.JobBinary = jobBinary
	// BW_E2E_REPO_ROOT runs the state machines (statemachine/) of another
	// tree, e.g. a deliberately broken copy to check that the specs notice.
	opts.RepoRoot = os.Getenv("BW_E2E_REPO_ROOT")
	opts.Sandbox.ClientID = clientID
	opts.Sandbox.ClientSecret = clientSecret
	if opts.Sandbox.ExportDelay == 0 {
		opts.Sandbox.ExportDelay = 300 * time.Millisecond
	}
	if os.Getenv("BW_E2E_VERBOSE") == "1" {
		opts.Stderr = GinkgoWriter
		opts.Logf = func(f string, a ...any) { GinkgoWriter.Printf("hub: "+f+"\n", a...) }
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := emulate.Start(ctx, opts)
	Expect(err).NotTo(HaveOccurred(), "start the local stack")
	DeferCleanup(func() {
		st.Close()
		_ = os.RemoveAll(dir)
	})
	return st
}
