package samplezip

import (
	"math"
	"math/rand/v2"
	"path"
	"strconv"
	"strings"

	"github.com/klauspost/compress/zip"
)

// kind is the type of content an entry holds.
type kind uint8

const (
	kindHTML kind = iota
	kindMarkdown
	kindCSV
	kindJSONL
	kindPNG
	kindTIFF
)

func (k kind) text() bool { return k <= kindJSONL }

// item is one planned entry.
type item struct {
	name   string
	size   int64
	kind   kind
	method uint16
	title  string // notebook entry title, used in text content
	etr    string // notebook entry id, used in text content
}

// sizeSigma is the standard deviation of the log of the file sizes.
const sizeSigma = 0.9

// Read-only tables the names and content are drawn from.
var (
	notebookTitles = [...]string{
		"Protein Engineering Notebook", "Assay Development", "Cell Line Development",
		"Antibody Discovery 2024", "Upstream Process Dev", "Genomics Core",
	}
	entryTitles = [...]string{
		"PCR Optimization", "Protein Expression Batch", "Cell Culture Passage",
		"ELISA Readout", "Western Blot", "Plasmid Miniprep", "qPCR Standard Curve",
		"Transfection Efficiency", "Gel Electrophoresis", "Mass Spec Run",
		"TNF-α Titration", "Growth Curve", "Buffer Prep", "Colony Screen",
	}
	measurements = [...]string{"absorbance", "fluorescence", "qpcr_ct", "od600", "viability"}
)

// plan lays out the entries of s: names, sizes, content kinds and methods.
func plan(s Spec) []item {
	n := max(s.Files, len(s.Names))
	rng := rand.New(rand.NewPCG(s.Seed, 0x73616d706c657a70)) // "samplezp"
	sizes := spreadSizes(rng, n, s.TotalBytes)
	notebook := notebookTitles[rng.IntN(len(notebookTitles))]

	used := make(map[string]bool, n+len(s.Large))
	for _, name := range s.Names {
		used[name] = true
	}
	p := planner{rng: rng, used: used}
	items := make([]item, 0, n+len(s.Large))
	nextLarge := 0
	addLarge := func() {
		it := p.largeItem(s.Large[nextLarge])
		it.method = s.method(kindTIFF, 0)
		items = append(items, it)
		nextLarge++
	}
	textOrdinal := 0
	for i := range n {
		for nextLarge < len(s.Large) && (nextLarge+1)*n/(len(s.Large)+1) == i {
			addLarge()
		}
		text := isText(i, s.Compressible)
		var it item
		switch {
		case i < len(s.Names):
			it = p.userItem(s.Names[i], text)
		case i == 0 && text:
			it = item{name: p.unique(notebook + ".html"), kind: kindHTML, title: notebook}
		default:
			it = p.generatedItem(text)
		}
		it.size = sizes[i]
		it.method = s.method(it.kind, textOrdinal)
		if text {
			textOrdinal++
		}
		items = append(items, it)
	}
	for nextLarge < len(s.Large) {
		addLarge()
	}
	return items
}

// method is the compression method for the textOrdinal-th text file or an
// image-like file of kind k.
func (s Spec) method(k kind, textOrdinal int) uint16 {
	switch {
	case s.Zstd && k.text() && textOrdinal%2 == 1:
		return MethodZstd
	case s.StoreAll:
		return zip.Store
	case s.Method == zip.Deflate || k.text():
		return zip.Deflate
	default:
		return zip.Store
	}
}

// isText reports whether regular file i is text, spreading the fraction c
// of text files evenly, with file 0 text whenever c > 0.
func isText(i int, c float64) bool {
	const scale = 1 << 20
	cm := int64(math.Round(c * scale))
	ceilDiv := func(a int64) int64 { return (a + scale - 1) / scale }
	return ceilDiv(int64(i+1)*cm) > ceilDiv(int64(i)*cm)
}

// spreadSizes splits total into n log-normal-ish sizes that add up to total.
func spreadSizes(rng *rand.Rand, n int, total int64) []int64 {
	sizes := make([]int64, n)
	if n == 0 {
		return sizes
	}
	cum := make([]float64, n)
	var sum float64
	for i := range cum {
		sum += math.Exp(sizeSigma * rng.NormFloat64())
		cum[i] = sum
	}
	var prev int64
	for i := range sizes {
		end := int64(math.Round(float64(total) * (cum[i] / sum)))
		if i == n-1 {
			end = total
		}
		end = min(max(end, prev), total)
		sizes[i] = end - prev
		prev = end
	}
	return sizes
}

// planner names generated entries, folder by folder.
type planner struct {
	rng  *rand.Rand
	used map[string]bool

	// Current notebook entry folder.
	prefix                       string // "<title> (<etr>)/"
	title                        string
	etr                          string
	remaining                    int // files left to put in this folder
	hasMD                        bool
	csv, jsonl, png, tiff, large int
}

// nextFolder starts a new notebook entry folder.
func (p *planner) nextFolder() {
	for {
		p.title = entryTitles[p.rng.IntN(len(entryTitles))] + " " + strconv.Itoa(1+p.rng.IntN(40))
		p.etr = "etr_" + base62(p.rng, 8)
		p.prefix = p.title + " (" + p.etr + ")/"
		if !p.used[p.prefix] {
			break
		}
	}
	p.used[p.prefix] = true
	p.remaining = 3 + p.rng.IntN(10)
	p.hasMD = false
	p.csv, p.jsonl, p.png, p.tiff, p.large = 0, 0, 0, 0, 0
}

func (p *planner) generatedItem(text bool) item {
	if p.remaining == 0 {
		p.nextFolder()
	}
	p.remaining--
	it := item{title: p.title, etr: p.etr}
	var name string
	switch {
	case text && !p.hasMD:
		p.hasMD = true
		it.kind, name = kindMarkdown, p.title+".md"
	case text && p.rng.IntN(5) < 3:
		p.csv++
		it.kind, name = kindCSV, "results/plate_"+pad2(p.csv)+".csv"
	case text:
		p.jsonl++
		m := measurements[p.rng.IntN(len(measurements))]
		it.kind, name = kindJSONL, "results/"+m+"_"+pad2(p.jsonl)+".jsonl"
	case p.rng.IntN(2) == 0:
		p.png++
		it.kind, name = kindPNG, "attachments/IMG_"+strconv.Itoa(1000+p.rng.IntN(9000))+".png"
	default:
		p.tiff++
		it.kind, name = kindTIFF, "attachments/gel scan "+pad2(p.tiff)+".tiff"
	}
	it.name = p.unique(p.prefix + name)
	return it
}

func (p *planner) largeItem(size int64) item {
	if p.prefix == "" {
		p.nextFolder()
	}
	p.large++
	return item{
		name:  p.unique(p.prefix + "attachments/confocal stack " + pad2(p.large) + ".tiff"),
		size:  size,
		kind:  kindTIFF,
		title: p.title,
		etr:   p.etr,
	}
}

// userItem is an entry with a caller-chosen name; its content kind follows
// the name's extension where that fits.
func (p *planner) userItem(name string, text bool) item {
	if p.prefix == "" {
		p.nextFolder()
	}
	it := item{name: name, title: p.title, etr: p.etr}
	ext := strings.ToLower(path.Ext(name))
	switch {
	case text && ext == ".html":
		it.kind = kindHTML
	case text && ext == ".md":
		it.kind = kindMarkdown
	case text && ext == ".jsonl":
		it.kind = kindJSONL
	case text:
		it.kind = kindCSV
	case ext == ".tif" || ext == ".tiff":
		it.kind = kindTIFF
	default:
		it.kind = kindPNG
	}
	return it
}

// unique returns name, or name with " (2)", " (3)", ... before its
// extension if name is taken, and marks the result as taken.
func (p *planner) unique(name string) string {
	cand := name
	ext := path.Ext(name)
	for k := 2; p.used[cand]; k++ {
		cand = strings.TrimSuffix(name, ext) + " (" + strconv.Itoa(k) + ")" + ext
	}
	p.used[cand] = true
	return cand
}

func base62(rng *rand.Rand, n int) string {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[rng.IntN(len(alphabet))]
	}
	return string(b)
}

func pad2(v int) string {
	if v < 10 {
		return "0" + strconv.Itoa(v)
	}
	return strconv.Itoa(v)
}
