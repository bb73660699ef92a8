package local_test

import (
	"os"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.yaml.in/yaml/v3"

	"benchling-webhook/internal/testkit/sandbox"
	"benchling-webhook/internal/testkit/testenv"
)

// subscribedTypes returns the message types benchling/app-manifest.yaml
// subscribes, read when the spec tree is built.
func subscribedTypes() []string {
	root, err := testenv.RepoRoot()
	if err != nil {
		panic(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "benchling", "app-manifest.yaml"))
	if err != nil {
		panic(err)
	}
	var m struct {
		Subscriptions struct {
			Messages []struct{ Type string } `yaml:"messages"`
		} `yaml:"subscriptions"`
	}
	if err := yaml.Unmarshal(b, &m); err != nil {
		panic(err)
	}
	var out []string
	for _, msg := range m.Subscriptions.Messages {
		out = append(out, msg.Type)
	}
	return out
}

// The manifest's entry and lifecycle subscriptions on the real machines:
// each entry event packages its entry, each lifecycle webhook needs no
// action (the canvas types have their own specs in paths_test.go).
// internal/deploytest/deploycheck compares the manifest with the Route
// statically; this runs it.
var _ = Describe("The app manifest's subscriptions", func() {
	types := subscribedTypes()
	It("subscribes entry and lifecycle types", func() {
		Expect(types).To(ContainElements("v2.entry.updated.reviewRecord", "v2.app.installed"))
	})
	for _, typ := range types {
		switch {
		case strings.HasPrefix(typ, "v2.entry."):
			It(typ+" on /event packages its entry", func() {
				entry := newEntryID()
				files := addEntry(shared, entry, sandbox.EntryOptions{})
				createdAt := pastTime()
				r := deliver(shared, "/event", entry, files, map[string]any{"type": typ, "id": "evt_" + randomHex(6),
					"resourceId": entry, "createdAt": createdAt, "schema": map[string]string{"id": "ts_sWLj9kNl"}})
				Expect(stateOrder(r.webhook)).To(ContainElement("CheckEventEntryId"))
				Expect(sortedKeys(packageFiles(shared, entry))).To(ContainElements("entry.json", "input.json", "README.md"))
				Expect(decodeMessage(messagesFrom(shared, r.pack.ARN)[0]).CommitMessage).To(HaveSuffix(createdAt))
			})
		case strings.HasPrefix(typ, "v2.app.") || strings.HasPrefix(typ, "v2-beta.app."):
			It(typ+" on /lifecycle needs no action", func() {
				q := settle(shared)
				s := send(shared, "/lifecycle", map[string]any{"type": typ})
				ex := wait(shared, s.Response.ExecutionArn)
				Expect(ex.Status).To(Equal("SUCCEEDED"), describeFailure(shared, ex.ARN))
				Expect(stateOrder(ex)).To(HaveExactElements(noActionStates))
				expectNoEffects(shared, ex.ARN, q)
			})
		}
	}
})
