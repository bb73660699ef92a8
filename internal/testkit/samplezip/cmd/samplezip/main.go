// Command samplezip writes a sample Benchling-like export ZIP, for `make run`
// and for trying `job export` by hand. It is a development helper and is not
// part of the container image.
//
//	go run ./internal/testkit/samplezip/cmd/samplezip -preset small -o out/sample/export.zip
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"benchling-webhook/internal/testkit/samplezip"
)

func main() {
	preset := flag.String("preset", "small", "small, medium (~500 MB), many-small (20,000 files) or huge (~2 GB)")
	out := flag.String("o", "export.zip", "output path")
	flag.Parse()
	specs := map[string]func() samplezip.Spec{
		"small": samplezip.Small, "medium": samplezip.Medium,
		"many-small": samplezip.ManySmall, "huge": samplezip.Huge,
	}
	spec, ok := specs[*preset]
	if !ok {
		fmt.Fprintf(os.Stderr, "samplezip: unknown preset %q\n", *preset)
		os.Exit(2)
	}
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		fmt.Fprintf(os.Stderr, "samplezip: %v\n", err)
		os.Exit(1)
	}
	m, err := samplezip.WriteFile(*out, spec())
	if err != nil {
		fmt.Fprintf(os.Stderr, "samplezip: %v\n", err)
		os.Exit(1)
	}
	summary, _ := json.Marshal(map[string]any{"path": *out, "files": len(m.Entries), "archiveBytes": m.ArchiveSize, "uncompressedBytes": m.TotalUncompressed})
	fmt.Println(string(summary))
}
