package bench

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Targets from the issue.
const (
	targetJobOfCeiling = 0.80    // job MB/s at least this share of the ceiling's, on every export
	targetHugeRSSMiB   = 100     // job peak RSS on the huge export, default settings
	targetFetchedSlack = 0.05    // bytes fetched within this share of the archive size
	targetRSSExport    = "huge"  // the export the RSS target applies to
	mib                = 1 << 20 // bytes in a MiB
)

// results collects every iteration's run for the summary.
type results struct {
	runs map[string][]run // by "export/impl"
}

// add records one run.
func (rs *results) add(export, impl string, r run) {
	if rs.runs == nil {
		rs.runs = make(map[string][]run)
	}
	k := export + "/" + impl
	rs.runs[k] = append(rs.runs[k], r)
}

// empty reports whether nothing was recorded.
func (rs *results) empty() bool { return len(rs.runs) == 0 }

// cell summarises one implementation on one export.
type cell struct {
	runs, failed int
	mbps         float64 // median over successful runs
	rssMiB       float64 // max over all runs
	requests     float64 // median
	fetched      float64 // median fetched/archive
	notes        []string
	errs         []string
}

// cell returns the summary of impl on ex; ok is false when it did not run.
func (rs *results) cell(ex *export, impl string) (c cell, ok bool) {
	runs := rs.runs[ex.name+"/"+impl]
	if len(runs) == 0 {
		return cell{}, false
	}
	var mbps, reqs, fetched []float64
	for _, r := range runs {
		c.runs++
		c.rssMiB = math.Max(c.rssMiB, float64(r.rssKiB)/1024)
		if r.err != nil {
			c.failed++
			c.errs = append(c.errs, firstLine(r.err.Error()))
			continue
		}
		mbps = append(mbps, float64(ex.manifest.TotalUncompressed)/r.measured.Seconds()/1e6)
		reqs = append(reqs, float64(r.requests))
		fetched = append(fetched, float64(r.fetched)/float64(ex.manifest.ArchiveSize))
		n := fmt.Sprintf("wall %s, CPU: process %s, versitygw %s, bench (download server) %s",
			r.wall.Round(10*time.Millisecond), r.cpu.Round(10*time.Millisecond),
			r.s3CPU.Round(10*time.Millisecond), r.selfCPU.Round(10*time.Millisecond))
		if r.note != "" {
			n += "; " + r.note
		}
		c.notes = append(c.notes, n)
	}
	c.mbps, c.requests, c.fetched = median(mbps), median(reqs), median(fetched)
	return c, true
}

// markdown renders the summary: throughput, memory and download, the
// targets, and per-run notes. exports are the ones that were loaded.
func (rs *results) markdown(h *harness) string {
	exports := h.exports
	var sb strings.Builder
	sb.WriteString("## `job export` benchmark summary\n\n")
	sb.WriteString("Each cell is the median over the runs (peak RSS: the maximum). MB/s is uncompressed bytes (1 MB = 10^6 bytes) " +
		"per second of the process's wall time for job and baseline, and of the ceiling's own timing of its fastest upload trial " +
		"(the entries already decompressed in memory; loading excluded). All three upload to one local versitygw over TLS; " +
		"job and baseline download from a local HTTP server with Range support.\n\n")
	ka := "on (versitygw --keep-alive, as S3 keeps connections open)"
	if !h.keepAlive {
		ka = "**off** (" + envKeepAlive + "=0: versitygw closes every connection, so each request pays a TLS handshake)"
	}
	jobFlags := "default tuning"
	if f := strings.TrimSpace(os.Getenv(envJobFlags)); f != "" {
		jobFlags = "**extra flags** `" + f + "` (" + envJobFlags + ")"
	}
	cpus := fmt.Sprintf("not pinned: the measured process, versitygw and the download server share all %d CPUs", runtime.NumCPU())
	if h.pinChild != "" {
		cpus = fmt.Sprintf("**pinned** (%s): measured process on CPU %s; versitygw and the download server on CPU %s", envPin, h.pinChild, h.pinServer)
	}
	fmt.Fprintf(&sb, "- S3 server: versitygw (posix backend) in %s; keep-alive %s\n- job: %s\n- ceiling settings tried: %s\n- CPUs: %s\n\n",
		h.tmp, ka, jobFlags, envOr(envCeiling, defaultCeilingSettings), cpus)

	var thr, mem, tgt [][]string
	var notes []string
	for _, p := range presets {
		ex, ok := exports[p.name]
		if !ok {
			continue
		}
		job, hasJob := rs.cell(ex, "job")
		base, hasBase := rs.cell(ex, roleBaseline)
		ceil, hasCeil := rs.cell(ex, roleCeiling)
		if !hasJob && !hasBase && !hasCeil {
			continue
		}
		thr = append(thr, []string{
			p.name, fmt.Sprint(len(ex.manifest.Entries)),
			fmt.Sprintf("%.0f / %.0f", float64(ex.manifest.ArchiveSize)/mib, float64(ex.manifest.TotalUncompressed)/mib),
			mbpsText(job, hasJob), mbpsText(base, hasBase), mbpsText(ceil, hasCeil),
			ratioText(job, hasJob, base, hasBase), ratioText(job, hasJob, ceil, hasCeil),
		})
		mem = append(mem, []string{
			p.name, rssText(job, hasJob), rssText(base, hasBase), rssText(ceil, hasCeil),
			requestsText(job, hasJob), fetchedText(job, hasJob), requestsText(base, hasBase), fetchedText(base, hasBase),
		})

		if hasJob && hasCeil && job.runs > job.failed && ceil.runs > ceil.failed {
			r := job.mbps / ceil.mbps
			tgt = append(tgt, []string{fmt.Sprintf("job ≥ %.0f%% of ceiling", 100*targetJobOfCeiling), p.name,
				fmt.Sprintf("%.0f%%", 100*r), passFail(r >= targetJobOfCeiling)})
		}
		if hasJob && p.name == targetRSSExport {
			tgt = append(tgt, []string{fmt.Sprintf("job peak RSS ≤ %d MiB", targetHugeRSSMiB), p.name,
				fmt.Sprintf("%.0f MiB", job.rssMiB), passFail(job.rssMiB <= targetHugeRSSMiB)})
		}
		if hasJob && job.runs > job.failed {
			tgt = append(tgt, []string{fmt.Sprintf("job fetched within %.0f%% of archive", 100*targetFetchedSlack), p.name,
				fmt.Sprintf("%.3f×", job.fetched), passFail(math.Abs(job.fetched-1) <= targetFetchedSlack)})
		}

		for _, im := range []struct {
			name string
			c    cell
			ok   bool
		}{{"job", job, hasJob}, {roleBaseline, base, hasBase}, {roleCeiling, ceil, hasCeil}} {
			if !im.ok {
				continue
			}
			for _, n := range im.c.notes {
				notes = append(notes, fmt.Sprintf("- %s/%s: %s", p.name, im.name, n))
			}
			for _, e := range im.c.errs {
				notes = append(notes, fmt.Sprintf("- %s/%s: **FAILED**: %s", p.name, im.name, e))
			}
		}
	}

	sb.WriteString("### Throughput (MB/s, higher is better)\n\n")
	sb.WriteString(table([]string{"export", "files", "archive / uncompressed MiB", "job", "baseline", "ceiling",
		"job/baseline", fmt.Sprintf("job/ceiling (target ≥ %.2f)", targetJobOfCeiling)}, thr))
	sb.WriteString("\n### Memory and download\n\n")
	sb.WriteString(table([]string{"export", "job peak RSS MiB", "baseline peak RSS MiB", "ceiling peak RSS MiB",
		"job requests", fmt.Sprintf("job fetched/archive (target %.2f–%.2f)", 1-targetFetchedSlack, 1+targetFetchedSlack),
		"baseline requests", "baseline fetched/archive"}, mem))
	sb.WriteString("\n### Targets\n\n")
	sb.WriteString(table([]string{"target", "export", "measured", "status"}, tgt))
	sb.WriteString("\n### Runs\n\n")
	sb.WriteString("Ceiling settings are <entries at once>x<parts of one entry at once>; the fastest trial counts.\n\n")
	sb.WriteString(strings.Join(notes, "\n"))
	sb.WriteString("\n")
	return sb.String()
}

func mbpsText(c cell, ok bool) string {
	switch {
	case !ok:
		return "–"
	case c.failed == c.runs:
		return fmt.Sprintf("FAILED (%d/%d runs)", c.failed, c.runs)
	case c.failed > 0:
		return fmt.Sprintf("%.1f (%d/%d runs failed)", c.mbps, c.failed, c.runs)
	}
	return fmt.Sprintf("%.1f", c.mbps)
}

func ratioText(a cell, aok bool, b cell, bok bool) string {
	if !aok || !bok || a.failed == a.runs || b.failed == b.runs {
		return "–"
	}
	return fmt.Sprintf("%.2f", a.mbps/b.mbps)
}

func rssText(c cell, ok bool) string {
	if !ok {
		return "–"
	}
	return fmt.Sprintf("%.0f", c.rssMiB)
}

func requestsText(c cell, ok bool) string {
	if !ok || c.failed == c.runs {
		return "–"
	}
	return fmt.Sprintf("%.0f", c.requests)
}

func fetchedText(c cell, ok bool) string {
	if !ok || c.failed == c.runs {
		return "–"
	}
	return fmt.Sprintf("%.3f", c.fetched)
}

func passFail(ok bool) string {
	if ok {
		return "PASS"
	}
	return "**FAIL**"
}

// table renders a Markdown table with padded columns, so that it also
// reads well as plain text.
func table(header []string, rows [][]string) string {
	width := make([]int, len(header))
	for _, r := range append([][]string{header}, rows...) {
		for i, c := range r {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	var sb strings.Builder
	line := func(cells []string) {
		sb.WriteString("|")
		for i, c := range cells {
			fmt.Fprintf(&sb, " %s%s |", c, strings.Repeat(" ", width[i]-utf8.RuneCountInString(c)))
		}
		sb.WriteString("\n")
	}
	line(header)
	sep := make([]string, len(header))
	for i := range sep {
		sep[i] = strings.Repeat("-", width[i])
	}
	line(sep)
	for _, r := range rows {
		line(r)
	}
	return sb.String()
}

// median returns the median of v, or NaN when v is empty.
func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

// firstLine returns s up to its first newline, capped at 300 bytes.
func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
