package local_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"benchling-webhook/internal/testkit/emulate"
	"benchling-webhook/internal/testkit/sandbox"
)

// The OAuth client every stack's sandbox accepts; the suite uses it to read
// entries the way the state machine does.
const (
	clientID     = "e2e-client"
	clientSecret = "e2e-secret-0123456789abcdef"
)

// waitTimeout bounds every wait for an execution.
const waitTimeout = 60 * time.Second

// newEntryID returns a fresh entry id, so specs on the shared stack never
// see each other's objects, calls or faults.
func newEntryID() string { return "etr_" + randomHex(6) }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// exportFiles returns the files of an export of entry: a page at the top,
// a CSV and an attachment in folders, the content distinct per entry.
func exportFiles(entry string) map[string][]byte {
	noise := make([]byte, 3000)
	_, _ = rand.Read(noise)
	var csv strings.Builder
	csv.WriteString("well,value,entry\n")
	for i := range 200 {
		fmt.Fprintf(&csv, "A%d,%d,%s\n", i, i*7, entry)
	}
	return map[string][]byte{
		entry + ".html":                          []byte("<html><body><h1>" + entry + "</h1></body></html>\n"),
		"Results (" + entry + ")/plate_01.csv":   []byte(csv.String()),
		"Results (" + entry + ")/gel scan 1.bin": noise,
	}
}

// buildZip writes files (sorted by name) into a ZIP: text deflated,
// binaries stored, as Benchling's exports mix them.
func buildZip(files map[string][]byte) []byte {
	GinkgoHelper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range sortedKeys(files) {
		method := zip.Deflate
		if strings.HasSuffix(name, ".bin") {
			method = zip.Store
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: method, Modified: time.Now()})
		Expect(err).NotTo(HaveOccurred())
		_, err = w.Write(files[name])
		Expect(err).NotTo(HaveOccurred())
	}
	Expect(zw.Close()).To(Succeed())
	return buf.Bytes()
}

// addEntry adds entry to the stack's sandbox with an export serving a ZIP of
// its own files, and returns those files.
func addEntry(st *emulate.Stack, entry string, opt sandbox.EntryOptions) map[string][]byte {
	files := exportFiles(entry)
	opt.Export.Zip = buildZip(files)
	st.Benchling.AddEntry(entry, opt)
	return files
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// sent is one webhook delivered to the gateway.
type sent struct {
	Body     []byte
	Message  map[string]any // as it went out (Webhook adds "deprecated")
	Response emulate.Response
}

// send builds a webhook around msg, signs it with the sandbox's key, posts
// it to path and expects 202.
func send(st *emulate.Stack, path string, msg map[string]any) sent {
	GinkgoHelper()
	body := st.Webhook(msg)
	resp, err := st.Send(context.Background(), path, body)
	Expect(err).NotTo(HaveOccurred())
	Expect(resp.StatusCode).To(Equal(http.StatusAccepted), "gateway answer: %+v", resp)
	Expect(resp.ExecutionArn).NotTo(BeEmpty())
	return sent{Body: body, Message: msg, Response: resp}
}

// post posts body with headers h to path and expects 202.
func post(st *emulate.Stack, path string, body []byte, h http.Header) emulate.Response {
	GinkgoHelper()
	resp, err := st.Post(context.Background(), path, body, h)
	Expect(err).NotTo(HaveOccurred())
	Expect(resp.StatusCode).To(Equal(http.StatusAccepted), "gateway answer: %+v", resp)
	return resp
}

// wait waits for the execution to end.
func wait(st *emulate.Stack, arn string) *emulate.Execution {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	ex, err := st.Wait(ctx, arn)
	Expect(err).NotTo(HaveOccurred(), describeFailure(st, arn))
	return ex
}

// waitTree waits for the webhook execution and the executions it started,
// and returns it and the packaging executions (not the canvas machine's).
func waitTree(st *emulate.Stack, arn string) (*emulate.Execution, []*emulate.Execution) {
	GinkgoHelper()
	ex := wait(st, arn)
	var children []*emulate.Execution
	for _, c := range st.Children(arn) {
		if done := wait(st, c.ARN); done.Machine == emulate.Packaging {
			children = append(children, done)
		}
	}
	return ex, children
}

// packagingChildren returns the packaging executions started by arn.
func packagingChildren(st *emulate.Stack, arn string) []*emulate.Execution {
	var out []*emulate.Execution
	for _, c := range st.Children(arn) {
		if c.Machine == emulate.Packaging {
			out = append(out, c)
		}
	}
	return out
}

// packaged waits for the webhook execution arn and its one packaging
// execution, and expects both to succeed.
func packaged(st *emulate.Stack, arn string) (*emulate.Execution, *emulate.Execution) {
	GinkgoHelper()
	ex, children := waitTree(st, arn)
	Expect(ex.Status).To(Equal("SUCCEEDED"), describeFailure(st, arn))
	Expect(children).To(HaveLen(1), "packaging executions started by %s\n%s", arn, describeFailure(st, arn))
	Expect(children[0].Status).To(Equal("SUCCEEDED"), describeFailure(st, children[0].ARN))
	return ex, children[0]
}

// failedPackaging waits for the webhook execution arn (which must succeed)
// and its one packaging execution, which must fail with wantError.
func failedPackaging(st *emulate.Stack, arn, wantError string) *emulate.Execution {
	GinkgoHelper()
	ex, children := waitTree(st, arn)
	Expect(ex.Status).To(Equal("SUCCEEDED"), describeFailure(st, arn))
	Expect(children).To(HaveLen(1), describeFailure(st, arn))
	p := children[0]
	Expect(p.Status).To(Equal("FAILED"), describeFailure(st, p.ARN))
	Expect(p.Error).To(Equal(wantError), describeFailure(st, p.ARN))
	return p
}

// describeFailure describes an execution for a failure message: its status,
// Error and Cause, the executions it started, and the tail of the stdout
// and stderr of every ECS task it (or they) ran.
func describeFailure(st *emulate.Stack, arn string) string {
	var b strings.Builder
	var describe func(arn, indent string)
	describe = func(arn, indent string) {
		ex := st.Execution(arn)
		if ex == nil {
			fmt.Fprintf(&b, "%sno execution %s\n", indent, arn)
			return
		}
		fmt.Fprintf(&b, "%s%s execution %s: %s", indent, ex.Machine, ex.Name, ex.Status)
		if ex.Error != "" {
			fmt.Fprintf(&b, " error=%s cause=%s", ex.Error, tail(ex.Cause, 600))
		}
		b.WriteString("\n")
		for _, t := range st.TaskRuns() {
			if t.Execution == arn {
				fmt.Fprintf(&b, "%s  task %s %v exit %d\n%s    stdout: %s\n%s    stderr: %s\n", indent, t.TaskArn, t.Command,
					t.ExitCode, indent, tail(t.Stdout, 500), indent, tail(t.Stderr, 1500))
			}
		}
		for _, c := range st.Children(arn) {
			describe(c.ARN, indent+"  ")
		}
	}
	describe(arn, "")
	return b.String()
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// tasksOf returns the ECS tasks the execution ran.
func tasksOf(st *emulate.Stack, arn string) []emulate.TaskRun {
	var out []emulate.TaskRun
	for _, t := range st.TaskRuns() {
		if t.Execution == arn {
			out = append(out, t)
		}
	}
	return out
}

// verifyResult is the result line job verify prints on stdout.
type verifyResult struct {
	Verified  bool   `json:"verified"`
	Error     string `json:"error"`
	ErrorKind string `json:"errorKind"`
	ExitCode  int    `json:"exitCode"`
}

// verifyOutcome returns the result of the (only) verify task of arn.
func verifyOutcome(st *emulate.Stack, arn string) (verifyResult, emulate.TaskRun) {
	GinkgoHelper()
	tasks := tasksOf(st, arn)
	Expect(tasks).To(HaveLen(1), describeFailure(st, arn))
	Expect(tasks[0].Command).To(HaveExactElements("verify", "--execution-arn", arn))
	lines := strings.Split(strings.TrimSpace(tasks[0].Stdout), "\n")
	var r verifyResult
	Expect(json.Unmarshal([]byte(lines[len(lines)-1]), &r)).To(Succeed(), "job verify stdout: %s", tasks[0].Stdout)
	return r, tasks[0]
}

// messagesFrom returns the packager-queue messages sent by the executions.
func messagesFrom(st *emulate.Stack, arns ...string) []emulate.Message {
	var out []emulate.Message
	for _, m := range st.Messages() {
		for _, a := range arns {
			if m.Execution == a {
				out = append(out, m)
			}
		}
	}
	return out
}

// packagerMessage is the body of a message to the Quilt packager queue.
type packagerMessage struct {
	SourcePrefix  string `json:"source_prefix"`
	Registry      string `json:"registry"`
	PackageName   string `json:"package_name"`
	MetadataURI   string `json:"metadata_uri"`
	CommitMessage string `json:"commit_message"`
}

// decodeMessage decodes a queue message strictly: no other fields allowed.
func decodeMessage(m emulate.Message) packagerMessage {
	GinkgoHelper()
	dec := json.NewDecoder(strings.NewReader(m.Body))
	dec.DisallowUnknownFields()
	var pm packagerMessage
	Expect(dec.Decode(&pm)).To(Succeed(), "message body %s", m.Body)
	return pm
}

// bucket and packageName are where the stack puts entry's package.
func bucket(st *emulate.Stack) string { return st.Settings()["BucketName"] }
func packageName(st *emulate.Stack, entry string) string {
	return st.Settings()["PackagePrefix"] + "/" + entry
}

// listKeys lists the keys under prefix (without reading them).
func listKeys(st *emulate.Stack, prefix string) []string {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := st.S3.Client(ctx)
	Expect(err).NotTo(HaveOccurred())
	var keys []string
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket(st)), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		Expect(err).NotTo(HaveOccurred())
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	sort.Strings(keys)
	return keys
}

// packageFiles reads every object of entry's package, keyed by its path
// inside the package.
func packageFiles(st *emulate.Stack, entry string) map[string][]byte {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	prefix := packageName(st, entry) + "/"
	objs, err := st.S3.Objects(ctx, bucket(st), prefix)
	Expect(err).NotTo(HaveOccurred())
	out := make(map[string][]byte, len(objs))
	for k, v := range objs {
		out[strings.TrimPrefix(k, prefix)] = v
	}
	return out
}

// packageKeys lists the paths in entry's package.
func packageKeys(st *emulate.Stack, entry string) []string {
	GinkgoHelper()
	prefix := packageName(st, entry) + "/"
	var out []string
	for _, k := range listKeys(st, prefix) {
		out = append(out, strings.TrimPrefix(k, prefix))
	}
	return out
}

// fetchEntry reads the entry from the sandbox's API as the state machine
// does, and returns the Entry object.
func fetchEntry(st *emulate.Stack, entry string) json.RawMessage {
	GinkgoHelper()
	form := url.Values{"grant_type": {"client_credentials"}}
	req, err := http.NewRequest(http.MethodPost, st.Benchling.URL()+"/api/v2/token", strings.NewReader(form.Encode()))
	Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(clientID, clientSecret)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	getJSON(req, &tok)
	req, err = http.NewRequest(http.MethodGet, st.Benchling.URL()+"/api/v2/entries/"+entry, nil)
	Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	var doc struct {
		Entry json.RawMessage `json:"entry"`
	}
	getJSON(req, &doc)
	return doc.Entry
}

func getJSON(req *http.Request, v any) {
	GinkgoHelper()
	resp, err := http.DefaultClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	Expect(err).NotTo(HaveOccurred())
	Expect(resp.StatusCode).To(Equal(http.StatusOK), "%s %s: %s", req.Method, req.URL.Path, b)
	Expect(json.Unmarshal(b, v)).To(Succeed())
}

// callCount and callsSince let a spec see only the sandbox calls made
// after a point (specs on one stack run one after another).
func callCount(st *emulate.Stack) int { return len(st.Benchling.Calls()) }

func callsSince(st *emulate.Stack, n int) []sandbox.Call { return st.Benchling.Calls()[n:] }

// callsTo returns the calls with method whose path is exactly path.
func callsTo(st *emulate.Stack, method, path string) []sandbox.Call {
	var out []sandbox.Call
	for _, c := range st.Benchling.Calls() {
		if c.Method == method && c.Path == path {
			out = append(out, c)
		}
	}
	return out
}

// statuses returns the statuses of calls, in order.
func statuses(calls []sandbox.Call) []int {
	out := make([]int, len(calls))
	for i, c := range calls {
		out[i] = c.Status
	}
	return out
}

// canvasWrite is the body of a canvas PATCH or POST.
type canvasWrite struct {
	AppID      string        `json:"appId"`
	FeatureID  string        `json:"featureId"`
	ResourceID string        `json:"resourceId"`
	Enabled    *bool         `json:"enabled"`
	Blocks     []canvasBlock `json:"blocks"`
}

type canvasBlock struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	Value   string `json:"value"`
	Text    string `json:"text"`
	Enabled *bool  `json:"enabled"`
}

// expectLinks checks a canvas write's blocks: the Quilt links markdown for
// entry's package with the status line "> note", then the Update Package button.
func expectLinks(st *emulate.Stack, w canvasWrite, entry, note string) {
	GinkgoHelper()
	Expect(w.Enabled).To(HaveValue(BeTrue()))
	Expect(w.Blocks).To(HaveLen(2), "blocks %+v", w.Blocks)
	s := st.Settings()
	host, bkt, pkg := s["CatalogHost"], s["BucketName"], packageName(st, entry)
	md := w.Blocks[0]
	Expect(md.Type).To(Equal("MARKDOWN"))
	Expect(md.Value).To(HavePrefix("# Quilt Links\n---\n"))
	Expect(md.Value).To(ContainSubstring(fmt.Sprintf("- [Quilt Catalog](https://%s/b/%s/packages/%s)\n", host, bkt, pkg)))
	Expect(md.Value).To(ContainSubstring(fmt.Sprintf("- [Drop Zone](https://%s/b/%s/packages/%s?action=revisePackage)\n", host, bkt, pkg)))
	Expect(md.Value).To(ContainSubstring(fmt.Sprintf("- [QuiltSync](quilt+s3://%s#package=%s&catalog=%s)\n", bkt, pkg, host)))
	Expect(md.Value).To(HaveSuffix("\n---\n> " + note))
	btn := w.Blocks[1]
	Expect(btn.Type).To(Equal("BUTTON"))
	Expect(btn.ID).To(Equal(entry))
	Expect(btn.Text).To(Equal("Update Package"))
	Expect(btn.Enabled).To(HaveValue(BeTrue()))
}

func decodeCanvasWrite(body []byte) canvasWrite {
	GinkgoHelper()
	var w canvasWrite
	Expect(json.Unmarshal(body, &w)).To(Succeed(), "canvas write %s", body)
	return w
}

// watchQueue polls the packager queue every millisecond from now on and, as
// soon as a message for entry's package appears, lists the package's keys.
// The returned function waits for and returns that listing.
func watchQueue(st *emulate.Stack, entry string) func() []string {
	want := `"package_name":"` + packageName(st, entry) + `"`
	done := make(chan []string, 1)
	stop := time.After(waitTimeout)
	go func() {
		defer GinkgoRecover()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			for _, m := range st.Messages() {
				if strings.Contains(m.Body, want) {
					done <- packageKeys(st, entry)
					return
				}
			}
			select {
			case <-tick.C:
			case <-stop:
				done <- nil
				return
			}
		}
	}()
	return func() []string {
		GinkgoHelper()
		select {
		case keys := <-done:
			return keys
		case <-time.After(waitTimeout):
			Fail("no packager message for " + entry)
			return nil
		}
	}
}

// stateOrder returns the names of the states the execution entered, in
// order, from the engine's event log.
// noActionStates are the states a verified webhook that needs no action
// runs through: the cheap pre-checks, verification, routing.
var noActionStates = []string{"CheckEnvelope", "CheckTimestampDigits", "TimestampDigits", "ParseTimestamp",
	"TimestampInRange", "TimestampBounds", "PlausibleTimestamp", "Verify", "ParseWebhook", "Route", "NoActionNeeded"}

func stateOrder(ex *emulate.Execution) []string {
	var out []string
	for _, raw := range ex.Events {
		var e struct {
			Type  string `json:"type"`
			State struct {
				Name string `json:"name"`
			} `json:"state"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Type == "StateEntered" {
			out = append(out, e.State.Name)
		}
	}
	return out
}

// pastTime is a fixed event time in the past, for commit messages.
func pastTime() string {
	n, _ := rand.Int(rand.Reader, big.NewInt(1_000_000))
	return fmt.Sprintf("2025-03-30T23:37:22.%06d+00:00", n.Int64())
}

// putObject writes one object to the stack's bucket, as a person using
// the catalog's drop zone would.
func putObject(st *emulate.Stack, key string, data []byte) {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := st.S3.Client(ctx)
	Expect(err).NotTo(HaveOccurred())
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket(st)), Key: aws.String(key), Body: bytes.NewReader(data)})
	Expect(err).NotTo(HaveOccurred())
}
