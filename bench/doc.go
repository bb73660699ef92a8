// Package bench measures `job export` against the old Lambda's way and an
// upload-only ceiling (`make bench`). See docs/testkit.md#benchmarks-bench
// and docs/performance.md.
package bench
