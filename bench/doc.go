// Package bench measures `job export` against two yardsticks, each run as
// its own process so that its wall time and peak RSS can be read:
//
//   - job: the built binary ($BW_JOB_BIN), streaming the export from an
//     HTTP server with Range support into S3 with its default settings;
//   - baseline: what the old Lambda did: download the whole ZIP into
//     memory, read every entry into memory, and start every PutObject at
//     once;
//   - ceiling: an upload-only upper bound: the entries, already
//     decompressed in memory, uploaded with bounded concurrency.
//
// The exports are the samplezip presets Medium, ManySmall and Huge, cached
// in out/bench-data; the S3 server is one versitygw process over TLS for the
// whole run (package s3local). The benchmarks are in the test files and run
// only when asked for with -bench; `make bench` runs them and benchstat.
// A summary table, with the targets, is printed at the end and
// written to out/bench-summary.md.
package bench
