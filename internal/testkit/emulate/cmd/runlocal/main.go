// Command runlocal is `make run`: it starts the local stack (S3 server,
// Benchling sandbox, the real state machines on a local engine, the job
// binary as the ECS task), sends one signed sample webhook through the
// local API Gateway, waits for both machines to finish, and prints what
// happened: the executions, the tasks, the S3 keys, the canvas updates,
// the message to the Quilt packager queue, the package the local Quilt
// stand-in built from it (its top hash) and the event that reached the
// local event bus.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"benchling-webhook/internal/testkit/emulate"
	"benchling-webhook/internal/testkit/sandbox"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "runlocal:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := pflag.NewFlagSet("runlocal", pflag.ContinueOnError)
	job := fs.String("job", "bin/job", "The job binary run as the ECS task.")
	dir := fs.String("dir", "out/run", "Working directory for the servers (recreated).")
	event := fs.String("event", "canvas", "The sample webhook: canvas (v2.canvas.created), entry (v2.entry.updated.fields), button (v2.canvas.userInteracted), initialized (v2.canvas.initialized without a canvas), lifecycle (v2.app.installed).")
	verbose := fs.Bool("verbose", false, "Show the job's and the servers' logs.")
	keep := fs.Bool("keep", false, "Keep the stack running after the run until Ctrl-C (prints the URLs).")
	if err := fs.Parse(args); err != nil {
		return err
	}
	jobPath, err := filepath.Abs(*job)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(*dir); err != nil {
		return err
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	absDir, _ := filepath.Abs(*dir)
	opts := emulate.Options{Dir: absDir, JobBinary: jobPath, Sandbox: sandbox.Options{ExportDelay: 2 * time.Second}}
	if *verbose {
		opts.Stderr = os.Stderr
		opts.Logf = func(f string, a ...any) { fmt.Fprintf(os.Stderr, "hub: "+f+"\n", a...) }
	} else {
		opts.Logf = func(f string, a ...any) { fmt.Fprintf(out, "  · "+f+"\n", a...) }
	}
	fmt.Fprintln(out, "Starting the local stack (versitygw S3, Benchling sandbox, aws-local-stepfunctions)…")
	st, err := emulate.Start(ctx, opts)
	if err != nil {
		return err
	}
	defer st.Close()
	fmt.Fprintf(out, "  S3 %s · Benchling %s · API Gateway %s\n", st.S3.Endpoint, st.Benchling.URL(), st.GatewayURL)

	const entry, canvas = "etr_sample01", "cnvs_sample01"
	st.Benchling.AddEntry(entry, sandbox.EntryOptions{DisplayID: "EXP26000001", Name: "Sample notebook entry"})
	st.Benchling.AddCanvas(canvas, entry)
	path, msg, err := sample(*event, entry, canvas)
	if err != nil {
		return err
	}
	body := st.Webhook(msg)
	fmt.Fprintf(out, "\nPOST %s%s  (%s, signed by the sandbox's app key)\n", st.GatewayURL, path, msg["type"])
	resp, err := st.Send(ctx, path, body)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "  → %d %s %s\n\n", resp.StatusCode, resp.Status, resp.ExecutionArn)
	wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := st.WaitAll(wctx); err != nil {
		return err
	}
	// Quilt builds the package asynchronously; its package-revision event
	// then starts the rule's machine (the canvas status) on the local bus.
	if _, err := st.Packager().WaitProcessed(wctx, len(st.Messages())); err != nil {
		return err
	}
	if err := st.WaitAll(wctx); err != nil {
		return err
	}
	failed := report(ctx, out, st)
	if *keep {
		fmt.Fprintf(out, "\nThe stack keeps running (Ctrl-C stops it): gateway %s, S3 %s (credentials in %s), Benchling %s\n",
			st.GatewayURL, st.S3.Endpoint, absDir, st.Benchling.URL())
		<-ctx.Done()
	}
	if failed {
		return fmt.Errorf("an execution failed")
	}
	return nil
}

func sample(event, entry, canvas string) (string, map[string]any, error) {
	now := time.Now().UTC().Format("2006-01-02T15:04:05.000000+00:00")
	switch event {
	case "canvas":
		return "/canvas", map[string]any{"type": "v2.canvas.created", "canvasId": canvas, "featureId": "quilt_integration", "resourceId": entry, "userId": "ent_local"}, nil
	case "entry":
		return "/event", map[string]any{"type": "v2.entry.updated.fields", "id": "evt_local01", "resourceId": entry, "createdAt": now,
			"schema": map[string]string{"id": "ts_local"}, "updates": []string{"fields.Sentinel"}}, nil
	case "button":
		return "/canvas", map[string]any{"type": "v2.canvas.userInteracted", "buttonId": entry, "canvasId": canvas, "featureId": "quilt_integration", "userId": "ent_local"}, nil
	case "initialized":
		return "/canvas", map[string]any{"type": "v2.canvas.initialized", "featureId": "quilt_integration", "resourceId": entry, "userId": "ent_local"}, nil
	case "lifecycle":
		return "/lifecycle", map[string]any{"type": "v2.app.installed"}, nil
	}
	return "", nil, fmt.Errorf("unknown --event %q", event)
}

// report prints the executions, tasks, S3 objects, canvas calls and queue
// messages, and says whether any execution failed.
func report(ctx context.Context, out io.Writer, st *emulate.Stack) (failed bool) {
	fmt.Fprintln(out, "\nExecutions:")
	for _, ex := range st.Executions() {
		line := fmt.Sprintf("  %-9s %-9s %-40s %6s", ex.Machine, ex.Status, ex.Name, ex.StopDate.Sub(ex.StartDate).Round(time.Millisecond))
		if ex.Error != "" {
			line += "  " + ex.Error + ": " + ex.Cause
			failed = true
		}
		fmt.Fprintln(out, line)
	}
	fmt.Fprintln(out, "\nECS tasks (the job binary):")
	for _, t := range st.TaskRuns() {
		fmt.Fprintf(out, "  job %-22s exit %d  %6s  %s\n", strings.Join(t.Command, " "), t.ExitCode, t.Duration.Round(time.Millisecond), t.TaskArn)
	}
	bucket := st.Settings()["BucketName"]
	objs, err := st.S3.Objects(ctx, bucket, "")
	fmt.Fprintf(out, "\nS3 objects in s3://%s/:\n", bucket)
	if err != nil {
		fmt.Fprintln(out, "  (list failed:", err, ")")
	}
	keys := make([]string, 0, len(objs))
	for k := range objs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(out, "  %8d  %s\n", len(objs[k]), k)
	}
	for _, k := range keys {
		if strings.HasSuffix(k, "/README.md") {
			fmt.Fprintf(out, "\n%s (first lines):\n", k)
			lines := strings.SplitN(string(objs[k]), "\n", 16)
			for _, l := range lines[:min(len(lines), 15)] {
				fmt.Fprintln(out, "  │ "+l)
			}
		}
	}
	fmt.Fprintln(out, "\nCanvas updates sent to Benchling:")
	n := 0
	for _, c := range st.Benchling.Calls() {
		if strings.HasPrefix(c.Path, "/api/v2/app-canvases") && (c.Method == "PATCH" || c.Method == "POST") {
			n++
			fmt.Fprintf(out, "  %s %s → %d\n", c.Method, c.Path, c.Status)
			var body struct {
				Blocks []map[string]any `json:"blocks"`
			}
			_ = json.Unmarshal(c.Body, &body)
			for _, b := range body.Blocks {
				if v, ok := b["value"].(string); ok {
					for _, l := range strings.Split(v, "\n") {
						fmt.Fprintln(out, "  │ "+l)
					}
				} else {
					fmt.Fprintf(out, "  │ [%v %q id=%v]\n", b["type"], b["text"], b["id"])
				}
			}
		}
	}
	if n == 0 {
		fmt.Fprintln(out, "  (none)")
	}
	fmt.Fprintln(out, "\nMessages to the Quilt packager queue:")
	for _, m := range st.Messages() {
		fmt.Fprintf(out, "  %s\n", m.Body)
	}
	if len(st.Messages()) == 0 {
		fmt.Fprintln(out, "  (none)")
	}
	reportQuilt(out, st)
	return failed
}

// reportQuilt prints what the Quilt packager stand-in built, the events
// on the local bus and the canvas's status over time.
func reportQuilt(out io.Writer, st *emulate.Stack) {
	fmt.Fprintln(out, "\nQuilt packaging engine (local stand-in):")
	results := st.Packager().Results()
	for _, r := range results {
		if r.Err != nil {
			fmt.Fprintf(out, "  no package for s3://%s %s: %v\n", r.Registry, r.Name, r.Err)
			continue
		}
		fmt.Fprintf(out, "  package %s in s3://%s: %d files, revision %s\n", r.Name, r.Registry, len(r.Entries), r.Revision)
		fmt.Fprintf(out, "  top hash %s\n", r.TopHash)
	}
	if len(results) == 0 {
		fmt.Fprintln(out, "  (nothing to build)")
	}
	fmt.Fprintln(out, "\nLocal EventBridge bus:")
	for _, e := range st.BusEvents() {
		if h, top, ok := e.Revision(); ok {
			fmt.Fprintf(out, "  com.quiltdata package-revision %s %s\n", h, top)
		} else {
			fmt.Fprintf(out, "  %s\n", e.Event)
		}
		for _, d := range e.Deliveries {
			fmt.Fprintf(out, "    → rule %s starts %s: %s", d.Rule, d.Machine, d.ExecutionArn)
			if d.Err != nil {
				fmt.Fprintf(out, " (%v)", d.Err)
			}
			fmt.Fprintln(out)
		}
		if len(e.Deliveries) == 0 {
			fmt.Fprintln(out, "    (no rule matches)")
		}
	}
	if len(st.BusEvents()) == 0 {
		fmt.Fprintln(out, "  (no events)")
	}
	var history []string
	for _, c := range st.Benchling.Calls() {
		if !strings.HasPrefix(c.Path, "/api/v2/app-canvases") || (c.Method != "PATCH" && c.Method != "POST") {
			continue
		}
		var body struct {
			Blocks []map[string]any `json:"blocks"`
		}
		_ = json.Unmarshal(c.Body, &body)
		for _, b := range body.Blocks {
			if v, ok := b["value"].(string); ok {
				if line := statusLine(v); line != "" {
					history = append(history, line)
				}
				break
			}
		}
	}
	if len(history) > 0 {
		fmt.Fprintln(out, "\nThe canvas over time:\n  "+strings.Join(history, "\n  → "))
	}
}

// statusLine is the canvas's status in its markdown: the first quoted
// line (the "> NOTE: …" of the status), else the first non-empty line,
// without its markup.
func statusLine(md string) string {
	first := ""
	for _, l := range strings.Split(md, "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, ">") {
			return strings.TrimSpace(strings.TrimLeft(l, "> "))
		}
		if t := strings.TrimSpace(strings.Trim(l, "#*_-")); first == "" && t != "" {
			first = t
		}
	}
	return first
}
