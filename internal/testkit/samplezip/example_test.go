package samplezip_test

import (
	"fmt"
	"io"

	"benchling-webhook/internal/testkit/samplezip"
)

func ExampleWrite() {
	m, err := samplezip.Write(io.Discard, samplezip.Small())
	if err != nil {
		panic(err)
	}
	fmt.Println(len(m.Entries), "entries,", m.TotalUncompressed, "bytes")
	for _, e := range m.Entries[:3] {
		fmt.Printf("%s (%d bytes)\n", e.Name, e.Size)
	}
	// Output:
	// 40 entries, 2097152 bytes
	// Upstream Process Dev.html (19502 bytes)
	// Gel Electrophoresis 37 (etr_08C1oiD8)/attachments/IMG_4424.png (24567 bytes)
	// Gel Electrophoresis 37 (etr_08C1oiD8)/Gel Electrophoresis 37.md (35740 bytes)
}
