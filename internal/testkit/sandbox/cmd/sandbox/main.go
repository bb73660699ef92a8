// Command sandbox runs a local Benchling stand-in (package sandbox) until
// interrupted, for `make run` and for trying the job by hand. It prints the
// tenant URL and credentials as one JSON line on stdout and logs requests to
// stderr. It is a development helper and is not part of the container image.
//
//	go run ./internal/testkit/sandbox/cmd/sandbox -entry etr_demo0001 -zip out/sample/export.zip
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"benchling-webhook/internal/testkit/sandbox"
)

func main() {
	var opts sandbox.Options
	flag.StringVar(&opts.ClientID, "client-id", "sandbox-client", "OAuth client id the token endpoint accepts.")
	flag.StringVar(&opts.ClientSecret, "client-secret", "sandbox-secret", "OAuth client secret the token endpoint accepts.")
	flag.StringVar(&opts.AppDefinitionID, "app-definition-id", "appdef_sandbox", "App definition id; the JWKS is served under it.")
	flag.DurationVar(&opts.ExportDelay, "export-delay", 2*time.Second, "How long an export task reports RUNNING.")
	flag.IntVar(&opts.RateLimit, "rate-limit", 0, "Requests per 30 s before 429; 0 means unlimited.")
	entries := flag.String("entry", "etr_sandbox1", "Comma-separated ids of the entries to serve.")
	zipPath := flag.String("zip", "", "ZIP file every export serves; empty means a small generated archive per entry.")
	flag.Parse()

	logger := log.New(os.Stderr, "", log.LstdFlags)
	opts.Logf = logger.Printf
	if err := run(opts, strings.Split(*entries, ","), *zipPath); err != nil {
		logger.Print(err)
		os.Exit(1)
	}
}

func run(opts sandbox.Options, entries []string, zipPath string) error {
	var spec sandbox.ExportSpec
	if zipPath != "" {
		b, err := os.ReadFile(zipPath)
		if err != nil {
			return fmt.Errorf("read export archive: %w", err)
		}
		spec.Zip = b
	}
	s, err := sandbox.Start(opts)
	if err != nil {
		return err
	}
	canvases := map[string]string{}
	for i, id := range entries {
		s.AddEntry(id, sandbox.EntryOptions{Export: spec})
		canvases[id] = fmt.Sprintf("cnvs_demo%04d", i+1)
		s.AddCanvas(canvases[id], id)
	}
	summary, err := json.Marshal(map[string]any{
		"baseURL":         s.URL(),
		"jwksURL":         s.JWKSURL(),
		"clientId":        opts.ClientID,
		"clientSecret":    opts.ClientSecret,
		"appDefinitionId": opts.AppDefinitionID,
		"appId":           sandbox.DefaultAppID,
		"canvases":        canvases,
	})
	if err != nil {
		return fmt.Errorf("marshal summary: %w", err)
	}
	fmt.Println(string(summary))

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	return s.Close()
}
