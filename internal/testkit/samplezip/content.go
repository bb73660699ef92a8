package samplezip

import (
	"encoding/binary"
	"math/rand/v2"
	"strconv"
	"time"
)

// source generates the content of one entry.
type source interface {
	// fill appends content to dst until len(dst) >= target and returns it.
	// It may append up to one record (a few hundred bytes) past target.
	fill(dst []byte, target int) []byte
}

// newSource returns the content generator for entry index of an archive.
// Every entry has its own deterministic stream, so content does not depend
// on the sizes of the entries before it.
func newSource(k kind, seed, index uint64, it item) source {
	if !k.text() {
		var key [32]byte
		pcg := rand.NewPCG(seed, index^0x696d616765) // "image"
		for i := 0; i < len(key); i += 8 {
			binary.LittleEndian.PutUint64(key[i:], pcg.Uint64())
		}
		return &randomSource{rng: rand.NewChaCha8(key), header: imageHeader(k)}
	}
	t := &textSource{
		kind:   k,
		rng:    rand.New(rand.NewPCG(seed, index^0x74657874)), // "text"
		title:  it.title,
		etr:    it.etr,
		sample: 1 + (index%997)*1000,
		plate:  1 + index%9000,
	}
	t.unix = baseTime(seed).Unix() + int64(index)*3600
	return t
}

// randomSource writes an image-like header followed by incompressible
// pseudo-random bytes.
type randomSource struct {
	rng    *rand.ChaCha8
	header []byte // written once, at the start
}

func (r *randomSource) fill(dst []byte, target int) []byte {
	start := len(dst)
	dst = grow(dst, target-start)
	_, _ = r.rng.Read(dst[start:]) // ChaCha8.Read never fails
	if r.header != nil {
		copy(dst[start:], r.header)
		r.header = nil
	}
	return dst
}

// grow returns dst extended by n bytes (contents unspecified).
func grow(dst []byte, n int) []byte {
	if n <= 0 {
		return dst
	}
	if cap(dst)-len(dst) < n {
		nb := make([]byte, len(dst), len(dst)+n)
		copy(nb, dst)
		dst = nb
	}
	return dst[:len(dst)+n]
}

func imageHeader(k kind) []byte {
	if k == kindTIFF {
		// Little-endian TIFF, first IFD at offset 8.
		return []byte{'I', 'I', 42, 0, 8, 0, 0, 0}
	}
	// PNG signature and the start of an IHDR chunk (2048x1536, 8-bit RGB).
	return []byte{
		0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n',
		0, 0, 0, 13, 'I', 'H', 'D', 'R',
		0, 0, 8, 0, 0, 0, 6, 0, 8, 2, 0, 0, 0,
	}
}

// Read-only tables for text content.
var (
	analytes    = [...]string{"IL-6", "TNF-a", "IFN-g", "GFP", "mCherry", "Lysozyme", "BSA", "Insulin"}
	operators   = [...]string{"akim", "jdoe", "mgarcia", "pchen", "rpatel", "snguyen"}
	statuses    = [...]string{"PASS", "PASS", "PASS", "PASS", "FAIL", "REVIEW"}
	instruments = [...]string{"SpectraMax iD5", "QuantStudio 7", "BioTek Synergy H1", "NanoDrop One", "Vi-CELL BLU"}
	units       = [...]string{"AU", "RFU", "cycles", "AU", "%"}
	sentences   = [...]string{
		"Thawed reagents on ice and vortexed briefly before use. ",
		"Prepared master mix for 96 reactions plus 10% overage. ",
		"Plate was sealed and centrifuged at 1000 x g for 1 min. ",
		"Incubated at 37 °C with 5% CO2 for 24 h. ",
		"Standards were run in triplicate; R² of the fit was above 0.99. ",
		"Observed slight edge effects in column 12, flagged for review. ",
		"Samples were diluted 1:10 in PBS prior to the read. ",
		"Negative controls showed no amplification after 40 cycles. ",
		"Lot numbers recorded in the reagent registry. ",
		"Data exported from the instrument software and attached below. ",
	}
)

// textSource generates lab-data-like text records with append-only
// formatting (no fmt), so generation keeps up with compression.
type textSource struct {
	kind    kind
	rng     *rand.Rand
	title   string
	etr     string
	sample  uint64
	plate   uint64
	unix    int64
	started bool
	rows    int
}

func (t *textSource) fill(dst []byte, target int) []byte {
	if !t.started {
		t.started = true
		dst = t.header(dst)
	}
	for len(dst) < target {
		dst = t.record(dst)
	}
	return dst
}

func (t *textSource) header(dst []byte) []byte {
	switch t.kind {
	case kindCSV:
		return append(dst, "sample_id,plate,well,analyte,concentration_ng_ul,od600,read_at,operator,status\n"...)
	case kindMarkdown:
		dst = append(dst, "# "...)
		dst = append(dst, t.title...)
		dst = append(dst, "\n\n**Entry ID:** "...)
		dst = append(dst, t.etr...)
		dst = append(dst, "  \n**Author:** "...)
		dst = append(dst, operators[t.rng.IntN(len(operators))]...)
		dst = append(dst, "  \n**Created:** "...)
		dst = appendTime(dst, t.unix)
		dst = append(dst, "\n\n## Protocol\n\n"...)
		for range 4 {
			dst = append(dst, sentences[t.rng.IntN(len(sentences))]...)
		}
		return append(dst, '\n')
	case kindHTML:
		dst = append(dst, "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>"...)
		dst = append(dst, t.title...)
		dst = append(dst, "</title></head>\n<body>\n<h1>"...)
		dst = append(dst, t.title...)
		return append(dst, "</h1>\n<table>\n<tr><th>Sample</th><th>Well</th><th>Concentration (ng/µL)</th><th>Read at</th><th>Status</th></tr>\n"...)
	}
	return dst
}

func (t *textSource) record(dst []byte) []byte {
	t.rows++
	t.sample++
	t.unix += int64(1 + t.rng.IntN(90))
	r := t.rng.Uint64()
	well, conc, od := r%96, (r>>8)%1_000_000, (r>>28)%3000
	status := statuses[(r>>40)%uint64(len(statuses))]
	switch t.kind {
	case kindCSV:
		dst = t.appendSample(dst)
		dst = append(dst, ',')
		dst = append(dst, "PLT-"...)
		dst = appendPad(dst, t.plate, 4)
		dst = append(dst, ',')
		dst = appendWell(dst, well)
		dst = append(dst, ',')
		dst = append(dst, analytes[(r>>44)%uint64(len(analytes))]...)
		dst = append(dst, ',')
		dst = appendFixed(dst, conc, 3)
		dst = append(dst, ',')
		dst = appendFixed(dst, od, 3)
		dst = append(dst, ',')
		dst = appendTime(dst, t.unix)
		dst = append(dst, ',')
		dst = append(dst, operators[(r>>48)%uint64(len(operators))]...)
		dst = append(dst, ',')
		dst = append(dst, status...)
		return append(dst, '\n')
	case kindJSONL:
		m := (r >> 44) % uint64(len(measurements))
		dst = append(dst, `{"entry_id":"`...)
		dst = append(dst, t.etr...)
		dst = append(dst, `","sample_id":"`...)
		dst = t.appendSample(dst)
		dst = append(dst, `","well":"`...)
		dst = appendWell(dst, well)
		dst = append(dst, `","measurement":"`...)
		dst = append(dst, measurements[m]...)
		dst = append(dst, `","value":`...)
		dst = appendFixed(dst, conc, 4)
		dst = append(dst, `,"unit":"`...)
		dst = append(dst, units[m]...)
		dst = append(dst, `","read_at":"`...)
		dst = appendTime(dst, t.unix)
		dst = append(dst, `","instrument":"`...)
		dst = append(dst, instruments[(r>>48)%uint64(len(instruments))]...)
		dst = append(dst, `","qc":"`...)
		dst = append(dst, status...)
		return append(dst, "\"}\n"...)
	case kindMarkdown:
		if t.rows%12 == 1 {
			dst = append(dst, "\n### Results "...)
			dst = strconv.AppendInt(dst, int64(t.rows/12+1), 10)
			dst = append(dst, "\n\n| Sample | Well | Concentration (ng/µL) | Status |\n|---|---|---|---|\n"...)
		}
		if t.rows%12 == 0 {
			dst = append(dst, '\n')
			for range 3 {
				dst = append(dst, sentences[t.rng.IntN(len(sentences))]...)
			}
			return append(dst, "\n\n"...)
		}
		dst = append(dst, "| "...)
		dst = t.appendSample(dst)
		dst = append(dst, " | "...)
		dst = appendWell(dst, well)
		dst = append(dst, " | "...)
		dst = appendFixed(dst, conc, 3)
		dst = append(dst, " | "...)
		dst = append(dst, status...)
		return append(dst, " |\n"...)
	default: // kindHTML
		dst = append(dst, "<tr><td>"...)
		dst = t.appendSample(dst)
		dst = append(dst, "</td><td>"...)
		dst = appendWell(dst, well)
		dst = append(dst, "</td><td>"...)
		dst = appendFixed(dst, conc, 3)
		dst = append(dst, "</td><td>"...)
		dst = appendTime(dst, t.unix)
		dst = append(dst, "</td><td>"...)
		dst = append(dst, status...)
		return append(dst, "</td></tr>\n"...)
	}
}

func (t *textSource) appendSample(dst []byte) []byte {
	dst = append(dst, "SMP-"...)
	return appendPad(dst, t.sample, 6)
}

// appendWell appends a 96-well plate position such as "B07".
func appendWell(dst []byte, i uint64) []byte {
	return appendPad(append(dst, byte('A'+i/12)), i%12+1, 2)
}

// appendPad appends v in decimal, zero-padded to width digits.
func appendPad(dst []byte, v uint64, width int) []byte {
	var b [20]byte
	i := len(b)
	for v > 0 || len(b)-i < width {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return append(dst, b[i:]...)
}

// appendFixed appends v/10^frac with exactly frac decimals.
func appendFixed(dst []byte, v uint64, frac int) []byte {
	p := uint64(1)
	for range frac {
		p *= 10
	}
	dst = strconv.AppendUint(dst, v/p, 10)
	dst = append(dst, '.')
	return appendPad(dst, v%p, frac)
}

// appendTime appends unix as an RFC 3339 UTC timestamp.
func appendTime(dst []byte, unix int64) []byte {
	t := time.Unix(unix, 0).UTC()
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	dst = appendPad(dst, uint64(y), 4)
	dst = appendPad(append(dst, '-'), uint64(mo), 2)
	dst = appendPad(append(dst, '-'), uint64(d), 2)
	dst = appendPad(append(dst, 'T'), uint64(h), 2)
	dst = appendPad(append(dst, ':'), uint64(mi), 2)
	dst = appendPad(append(dst, ':'), uint64(s), 2)
	return append(dst, 'Z')
}
