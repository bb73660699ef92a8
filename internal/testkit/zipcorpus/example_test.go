package zipcorpus_test

import (
	"bytes"
	"fmt"

	"benchling-webhook/internal/testkit/zipcorpus"
	"github.com/klauspost/compress/zip"
)

func ExampleManyEntries() {
	data := zipcorpus.ManyEntries(3)
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		panic(err)
	}
	for _, f := range zr.File {
		fmt.Println(f.Name, f.UncompressedSize64)
	}
	// Output:
	// entries/0000001.txt 2
	// entries/0000002.txt 2
	// entries/0000003.txt 2
}

func ExampleCases() {
	for _, c := range zipcorpus.Cases() {
		if c.Name == "dotdot-escape" || c.Name == "empty-archive" {
			fmt.Printf("%s: want %q, %d bytes\n", c.Name, c.Want, len(c.Build()))
		}
	}
	// Output:
	// empty-archive: want "", 22 bytes
	// dotdot-escape: want "ErrInsecurePath", 381 bytes
}
