package local_test

import (
	"context"
	"encoding/json"
	"sync"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"benchling-webhook/internal/testkit/emulate"
	"benchling-webhook/internal/testkit/sandbox"
)

var _ = Describe("20 webhooks for 20 entries at once", Ordered, func() {
	const n = 20
	var (
		entries []string
		files   = map[string]map[string][]byte{}
		arns    = map[string]string{} // webhook execution by entry
		packs   = map[string]*emulate.Execution{}
	)

	BeforeAll(func() {
		for range n {
			e := newEntryID()
			entries = append(entries, e)
			files[e] = addEntry(shared, e, sandbox.EntryOptions{})
		}
		bodies := map[string][]byte{}
		for _, e := range entries {
			bodies[e] = shared.Webhook(entryEvent(e))
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		errs := map[string]error{}
		for _, e := range entries {
			wg.Go(func() {
				resp, err := shared.Send(context.Background(), "/event", bodies[e])
				mu.Lock()
				defer mu.Unlock()
				errs[e] = err
				arns[e] = resp.ExecutionArn
			})
		}
		wg.Wait()
		for _, e := range entries {
			Expect(errs[e]).NotTo(HaveOccurred())
			Expect(arns[e]).NotTo(BeEmpty())
		}
		for _, e := range entries {
			_, packs[e] = packaged(shared, arns[e])
		}
	})

	It("runs 20 webhook and 20 packaging executions to success", func() {
		Expect(packs).To(HaveLen(n))
		seen := map[string]bool{}
		for _, e := range entries {
			Expect(seen[packs[e].ARN]).To(BeFalse())
			seen[packs[e].ARN] = true
			var in struct{ Entity string }
			Expect(json.Unmarshal(packs[e].Input, &in)).To(Succeed())
			Expect(in.Entity).To(Equal(e))
		}
	})

	It("sends 20 messages, one per package, each from its own packaging run", func() {
		for _, e := range entries {
			msgs := messagesFor(shared, packageName(shared, e))
			Expect(msgs).To(HaveLen(1), "messages for %s", e)
			Expect(msgs[0].Execution).To(Equal(packs[e].ARN))
		}
	})

	It("puts exactly each entry's own export into its package: no cross-talk", func() {
		for _, e := range entries {
			got := packageFiles(shared, e)
			want := append(sortedKeys(files[e]), "README.md", "entry.json", "input.json")
			Expect(sortedKeys(got)).To(ConsistOf(want), "package of %s", e)
			for name, data := range files[e] {
				Expect(got[name]).To(Equal(data), "%s in the package of %s", name, e)
			}
			var entry struct{ ID string }
			Expect(json.Unmarshal(got["entry.json"], &entry)).To(Succeed())
			Expect(entry.ID).To(Equal(e))
			var input struct{ ResourceID string }
			Expect(json.Unmarshal(got["input.json"], &input)).To(Succeed())
			Expect(input.ResourceID).To(Equal(e))
			Expect(string(got["README.md"])).To(ContainSubstring(e))
		}
	})
})
