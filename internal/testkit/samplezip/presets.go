package samplezip

// Small is the `make run` demo: 40 files, 2 MiB, half of them text.
// It writes an archive of about 1.2 MiB.
func Small() Spec {
	return Spec{Files: 40, TotalBytes: 2 << 20, Compressible: 0.5, Seed: 1}
}

// Medium is about 500 MiB in 2,000 files, half compressible CSV/JSON
// Lines/Markdown, half incompressible image-like files.
func Medium() Spec {
	return Spec{Files: 2000, TotalBytes: 500 << 20, Compressible: 0.5, Seed: 2}
}

// ManySmall is 20,000 small files of 4 KiB on average (80 MiB in all),
// half of them text.
func ManySmall() Spec {
	return Spec{Files: 20000, TotalBytes: 20000 * 4 << 10, Compressible: 0.5, Seed: 3}
}

// Huge is 2 GiB in all: four incompressible 300 MiB entries plus 848 MiB in
// 3,000 files, half of them text. No entry or offset needs zip64.
func Huge() Spec {
	const large = 300 << 20
	return Spec{
		Files:        3000,
		TotalBytes:   2<<30 - 4*large,
		Compressible: 0.5,
		Large:        []int64{large, large, large, large},
		Seed:         4,
	}
}
