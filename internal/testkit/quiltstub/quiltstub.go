// Package quiltstub stands in for the Quilt packaging engine in the local
// stack: it builds packages from the PackagerQueue's messages as Quilt does
// and emits Quilt's package-revision event. Design: docs/testkit.md#quiltstub-the-quilt-packaging-engine.
package quiltstub

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// S3 is the part of the S3 client the packager uses.
type S3 interface {
	GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	ListObjectVersions(ctx context.Context, in *s3.ListObjectVersionsInput, opts ...func(*s3.Options)) (*s3.ListObjectVersionsOutput, error)
}

// Options configures [New]. Client is required.
type Options struct {
	// Client reaches the buckets (the local versitygw).
	Client S3
	// Publish puts an event on the event bus (the whole EventBridge
	// event, as JSON); nil drops it. An error is recorded in the result.
	Publish func(ctx context.Context, event []byte) error
	// QueueSize bounds the messages waiting to be processed (default 64);
	// Submit blocks while the queue is full.
	QueueSize int
	// Region and Account fill the event's envelope.
	Region, Account string
	// Now is the clock (default time.Now).
	Now func() time.Time
	// SkipUnchanged, when set, makes no new revision and no event when the
	// package's latest revision already has the same top hash, as Quilt's
	// documentation says ("it will not actually create a new revision").
	// Off by default: the packaging engine's code (pkgpush
	// package_prefix -> Package._build) writes a new timestamp pointer
	// every time, and each new pointer is a package-revision event.
	SkipUnchanged bool
}

// Result is what became of one message.
type Result struct {
	// Body is the message as received.
	Body string
	// Registry (bucket), Name and TopHash of the package, when one was built
	// (Name is also set when the message was refused after it was known).
	Registry, Name, TopHash string
	// Entries are the package's files, in manifest order.
	Entries []Entry
	// Revision is the timestamp pointer written ("" if none).
	Revision string
	// Event is the package-revision event put on the bus (nil if none).
	Event json.RawMessage
	// Err is why no package was built (Quilt reports it nowhere but its
	// own logs), or why the event could not be published.
	Err error
}

// Packager is the stand-in packaging engine. Messages are processed one at
// a time, in order, on its own goroutine. Its methods are safe for
// concurrent use; call Close to stop it.
type Packager struct {
	opts  Options
	queue chan string
	ctx   context.Context
	stop  context.CancelFunc
	done  chan struct{}

	mu      sync.Mutex
	changed chan struct{} // closed and replaced whenever results grows
	results []Result
	ignore  []func(body string) bool
}

// ErrIgnored is the Err of a message [Packager.Ignore] matched: Quilt
// never answered it (no package, no event).
var ErrIgnored = errors.New("quiltstub: message ignored, as a packager that never answers would")

// Ignore makes the packager drop every later message for which match
// returns true, as a Quilt stack that is down or never answers would:
// nothing is built and no event is put; the result's Err is
// [ErrIgnored]. Use it for the "no revision arrives" cases.
func (p *Packager) Ignore(match func(body string) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ignore = append(p.ignore, match)
}

func (p *Packager) ignored(body string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range p.ignore {
		if m(body) {
			return true
		}
	}
	return false
}

// New starts a packager.
func New(opts Options) (*Packager, error) {
	if opts.Client == nil {
		return nil, errors.New("quiltstub: Options.Client is required")
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 64
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	p := &Packager{opts: opts, queue: make(chan string, opts.QueueSize), done: make(chan struct{}), changed: make(chan struct{})}
	p.ctx, p.stop = context.WithCancel(context.Background())
	go p.run()
	return p, nil
}

// Submit queues one message body, as the PackagerQueue receives it. It
// blocks while the queue is full, until ctx is done.
func (p *Packager) Submit(ctx context.Context, body string) error {
	select {
	case p.queue <- body:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-p.ctx.Done():
		return errors.New("quiltstub: packager closed")
	}
}

// Close stops processing; messages still queued are dropped.
func (p *Packager) Close() {
	p.stop()
	<-p.done
}

// Results returns what became of each message processed so far, in order.
func (p *Packager) Results() []Result {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Result(nil), p.results...)
}

// WaitProcessed blocks until at least n messages have been processed (or
// ctx is done) and returns the results so far.
func (p *Packager) WaitProcessed(ctx context.Context, n int) ([]Result, error) {
	for {
		p.mu.Lock()
		got, changed := len(p.results), p.changed
		p.mu.Unlock()
		if got >= n {
			return p.Results(), nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return p.Results(), fmt.Errorf("quiltstub: %d of %d messages processed: %w", got, n, context.Cause(ctx))
		}
	}
}

func (p *Packager) run() {
	defer close(p.done)
	for {
		select {
		case <-p.ctx.Done():
			return
		case body := <-p.queue:
			r := Result{Body: body, Err: ErrIgnored}
			if !p.ignored(body) {
				r = p.process(p.ctx, body)
			}
			p.mu.Lock()
			p.results = append(p.results, r)
			close(p.changed)
			p.changed = make(chan struct{})
			p.mu.Unlock()
		}
	}
}

// message is the packaging engine's PackagerEvent.
type message struct {
	sourcePrefix string
	registry     *string
	packageName  *string
	metadata     value // nil unless an object was given
	metadataURI  *string
	workflow     workflowArg
	commit       *string
}

// parseMessage reads a body as the engine's pydantic model does: a JSON
// object with a string source_prefix; registry, package_name,
// metadata_uri, workflow and commit_message strings (or null); metadata an
// object (or null); metadata and metadata_uri not both; other members ignored.
func parseMessage(body string) (message, error) {
	doc, err := decodeJSON([]byte(body))
	if err != nil {
		return message{}, refusal(ValidationError, err, "invalid message")
	}
	o, ok := doc.(*object)
	if !ok {
		return message{}, refusal(ValidationError, nil, "not a JSON object")
	}
	var m message
	optString := func(name string) (*string, error) {
		v, ok := o.get(name)
		if !ok || v == nil {
			return nil, nil
		}
		s, ok := v.(string)
		if !ok {
			return nil, refusal(ValidationError, nil, "%s: str type expected", name)
		}
		return &s, nil
	}
	src, err := optString("source_prefix")
	if err != nil {
		return message{}, err
	}
	if src == nil {
		return message{}, refusal(ValidationError, nil, "source_prefix: field required")
	}
	m.sourcePrefix = *src
	for name, dst := range map[string]**string{"registry": &m.registry, "package_name": &m.packageName,
		"metadata_uri": &m.metadataURI, "commit_message": &m.commit} {
		if *dst, err = optString(name); err != nil {
			return message{}, err
		}
	}
	wf, err := optString("workflow")
	if err != nil {
		return message{}, err
	}
	if wf != nil { // null or absent: the default workflow; "": none
		m.workflow.set = true
		if *wf != "" {
			m.workflow.name = wf
		}
	}
	if v, ok := o.get("metadata"); ok && v != nil {
		if _, isObj := v.(*object); !isObj {
			return message{}, refusal(ValidationError, nil, "metadata: value is not a valid dict")
		}
		m.metadata = v
	}
	if m.metadata != nil && m.metadataURI != nil {
		return message{}, refusal(ValidationError, nil, "metadata and metadata_uri are mutually exclusive")
	}
	return m, nil
}

// sourceFolder is PackagerEvent.get_source_prefix_pk: the bucket and the
// folder of source_prefix (the prefix itself if it ends in "/", else
// without its last component).
func sourceFolder(prefix string) (bucket, folder string, err error) {
	u, err := url.Parse(prefix)
	if err != nil || u.Scheme != "s3" || u.Host == "" {
		return "", "", fmt.Errorf("source_prefix %q is not an s3:// URL", prefix)
	}
	if u.RawQuery != "" {
		return "", "", fmt.Errorf("source_prefix %q: unexpected S3 query string", prefix)
	}
	path := strings.TrimPrefix(u.Path, "/")
	if path != "" && !strings.HasSuffix(path, "/") {
		if i := strings.LastIndex(path, "/"); i >= 0 {
			path = path[:i+1]
		} else {
			path += "/" // rsplit("/", 1)[0] + "/" of a single component
		}
	}
	return u.Host, path, nil
}

var nonNameChars = regexp.MustCompile(`[^\p{L}\p{N}_-]`)

// inferName is infer_pkg_name_from_prefix.
func inferName(folder string) string {
	var parts []string
	for _, p := range strings.Split(folder, "/") {
		if p != "" {
			parts = append(parts, nonNameChars.ReplaceAllString(p, "-"))
		}
	}
	head, tail := "package", "null"
	if len(parts) > 0 {
		tail = parts[len(parts)-1]
		if len(parts) > 1 {
			head = strings.Join(parts[:len(parts)-1], "_")
		}
	}
	return head + "/" + tail
}

// packageName is quilt3's PACKAGE_NAME_FORMAT.
var packageName = regexp.MustCompile(`^[\p{L}\p{N}_-]+/[\p{L}\p{N}_-]+$`)

// process is the engine's package_prefix for one message.
func (p *Packager) process(ctx context.Context, body string) (r Result) {
	r.Body = body
	m, err := parseMessage(body)
	if err != nil {
		r.Err = err
		return r
	}
	srcBucket, folder, err := sourceFolder(m.sourcePrefix)
	if err != nil {
		r.Err = err
		return r
	}
	r.Name = inferName(folder)
	if m.packageName != nil {
		r.Name = *m.packageName
	}
	r.Registry = srcBucket
	if m.registry != nil && *m.registry != "" {
		r.Registry = *m.registry
	}
	meta := m.metadata
	if m.metadataURI != nil {
		if meta, err = p.readMetadata(ctx, m.sourcePrefix, *m.metadataURI); err != nil {
			r.Err = err
			return r
		}
	}
	entries, err := p.list(ctx, srcBucket, folder)
	if err != nil {
		r.Err = err
		return r
	}
	pkgMeta := &object{}
	pkgMeta.set("version", "v0")
	pkgMeta.set("user_meta", meta)
	wfRecord, err := p.validateWorkflow(ctx, r.Registry, m.workflow, r.Name, meta, m.commit, entries)
	if err != nil {
		r.Err = err
		return r
	}
	if wfRecord != nil {
		pkgMeta.set("workflow", wfRecord)
	}
	for i := range entries {
		if entries[i].Hash, err = p.hash(ctx, srcBucket, entries[i]); err != nil {
			r.Err = err
			return r
		}
	}
	if !packageName.MatchString(r.Name) {
		r.Err = refusal(QuiltException, nil, "Invalid package name: %s.", r.Name)
		return r
	}
	if m.commit == nil {
		pkgMeta.set("message", nil)
	} else {
		pkgMeta.set("message", *m.commit)
	}
	man := &Manifest{meta: pkgMeta, Entries: entries}
	r.Entries = entries
	if r.TopHash, err = man.TopHash(); err != nil {
		r.Err = err
		return r
	}
	if p.opts.SkipUnchanged {
		latest, found, err := p.get(ctx, r.Registry, pointerKey(r.Name, "latest"))
		if err == nil && found && string(latest) == r.TopHash {
			return r
		}
	}
	data, err := man.Encode()
	if err != nil {
		r.Err = err
		return r
	}
	// Package._build -> PackageRegistryV1.push_manifest: the manifest, the
	// timestamp pointer, then latest.
	now := p.opts.Now().UTC()
	r.Revision = strconv.FormatInt(now.Unix(), 10)
	for _, put := range []struct{ key, body string }{
		{".quilt/packages/" + r.TopHash, string(data)},
		{pointerKey(r.Name, r.Revision), r.TopHash},
		{pointerKey(r.Name, "latest"), r.TopHash},
	} {
		if _, err := p.opts.Client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(r.Registry), Key: aws.String(put.key),
			Body: strings.NewReader(put.body)}); err != nil {
			r.Err = fmt.Errorf("put %s: %w", put.key, err)
			r.Revision = ""
			return r
		}
	}
	r.Event, r.Err = p.publish(ctx, now, r.Registry, r.Name, r.TopHash)
	return r
}

func pointerKey(name, pointer string) string { return ".quilt/named_packages/" + name + "/" + pointer }

// publish emits what Quilt's pkgevents function makes of the new pointer:
// a package-revision event on the default bus.
func (p *Packager) publish(ctx context.Context, at time.Time, bucket, name, topHash string) (json.RawMessage, error) {
	event := map[string]any{
		"version": "0", "id": uuid(), "detail-type": "package-revision", "source": "com.quiltdata",
		"account": p.opts.Account, "time": at.Format("2006-01-02T15:04:05Z"), "region": p.opts.Region,
		"resources": []string{},
		"detail":    map[string]any{"version": "0.1", "type": "created", "bucket": bucket, "handle": name, "topHash": topHash},
	}
	b, err := json.Marshal(event)
	if err != nil {
		return nil, err
	}
	if p.opts.Publish == nil {
		return b, nil
	}
	if err := p.opts.Publish(ctx, b); err != nil {
		return b, fmt.Errorf("publish the package-revision event: %w", err)
	}
	return b, nil
}

// readMetadata reads metadata_uri, resolved against source_prefix (RFC
// 3986), as a JSON object.
func (p *Packager) readMetadata(ctx context.Context, sourcePrefix, ref string) (value, error) {
	base, err := url.Parse(sourcePrefix)
	if err != nil {
		return nil, err
	}
	rel, err := url.Parse(ref)
	if err != nil {
		return nil, fmt.Errorf("metadata_uri %q: %w", ref, err)
	}
	u := base.ResolveReference(rel)
	if u.Scheme != "s3" || u.Host == "" {
		return nil, fmt.Errorf("metadata_uri %q is not an S3 object", u)
	}
	key := strings.TrimPrefix(u.Path, "/")
	data, found, err := p.get(ctx, u.Host, key)
	if err == nil && !found {
		err = fmt.Errorf("NoSuchKey: %s", s3URL(u.Host, key, ""))
	}
	if err != nil {
		return nil, fmt.Errorf("read metadata_uri: %w", err)
	}
	doc, err := decodeJSON(data)
	if err != nil {
		return nil, fmt.Errorf("read metadata_uri %s: %w", s3URL(u.Host, key, ""), err)
	}
	if _, ok := doc.(*object); !ok {
		return nil, refusal(PkgpushException, nil, "InvalidMetadata: Metadata must be a JSON object")
	}
	return doc, nil
}

// list returns the latest version of every object under folder as an
// entry (list_prefix_latest_versions, which pages ListObjectVersions):
// keys ending in "/" are skipped; physical keys carry the version id.
func (p *Packager) list(ctx context.Context, bucket, folder string) ([]Entry, error) {
	var entries []Entry
	in := &s3.ListObjectVersionsInput{Bucket: aws.String(bucket), Prefix: aws.String(folder)}
	for pages := 0; ; pages++ {
		if pages > 10_000 {
			return nil, errors.New("list: too many pages")
		}
		out, err := p.opts.Client.ListObjectVersions(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list s3://%s/%s: %w", bucket, folder, err)
		}
		for _, o := range out.Versions {
			key := aws.ToString(o.Key)
			if !aws.ToBool(o.IsLatest) || strings.HasSuffix(key, "/") {
				continue
			}
			entries = append(entries, Entry{LogicalKey: key[len(folder):], PhysicalKey: s3URL(bucket, key, aws.ToString(o.VersionId)),
				Size: aws.ToInt64(o.Size), version: aws.ToString(o.VersionId), key: key})
		}
		if !aws.ToBool(out.IsTruncated) {
			break
		}
		in.KeyMarker, in.VersionIdMarker = out.NextKeyMarker, out.NextVersionIdMarker
	}
	sortWalkOrder(entries)
	return entries, nil
}

func (p *Packager) hash(ctx context.Context, bucket string, e Entry) (string, error) {
	key := e.key
	in := &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}
	if e.version != "" {
		in.VersionId = aws.String(e.version)
	}
	out, err := p.opts.Client.GetObject(ctx, in)
	if err != nil {
		return "", fmt.Errorf("hash %s: %w", e.PhysicalKey, err)
	}
	defer out.Body.Close()
	h, err := ChunkedSHA256(out.Body, e.Size)
	if err != nil {
		return "", fmt.Errorf("hash %s: %w", e.PhysicalKey, err)
	}
	return h, nil
}

// maxSmallObject bounds the config, schemas and metadata read into memory.
const maxSmallObject = 16 << 20

// get reads a small object; found is false for NoSuchKey.
func (p *Packager) get(ctx context.Context, bucket, key string) (data []byte, found bool, err error) {
	data, _, found, err = p.getVersion(ctx, bucket, key)
	return data, found, err
}

// getVersion is get that also returns the object's version id ("" if
// the answer names none), for quilt3's get_bytes_and_effective_pk.
func (p *Packager) getVersion(ctx context.Context, bucket, key string) (data []byte, version string, found bool, err error) {
	out, err := p.opts.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		var ae smithy.APIError
		if errors.As(err, &ae) && (ae.ErrorCode() == "NoSuchKey" || ae.ErrorCode() == "NotFound") {
			return nil, "", false, nil
		}
		return nil, "", false, err
	}
	defer out.Body.Close()
	data, err = io.ReadAll(io.LimitReader(out.Body, maxSmallObject+1))
	if err == nil && len(data) > maxSmallObject {
		err = fmt.Errorf("s3://%s/%s is over %d bytes", bucket, key, maxSmallObject)
	}
	return data, aws.ToString(out.VersionId), err == nil, err
}

func uuid() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
