package store

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"github.com/ledongthuc/pdf"
)

// Bounds on what a PDF may cost: the text kept of one page, and the
// outline entries read.
const (
	maxPDFPageBytes    = 1 << 20
	maxPDFOutlineItems = 10000
	maxPDFOutlineDepth = 16
)

// splitPDF splits a PDF's text layer into sections: one per page (cut
// into parts when long), cited "file.pdf › p. 3", or "file.pdf › Grading
// › p. 3" when the document's outline (its bookmarks) has an entry
// starting on or before that page. A PDF that cannot be read, is
// encrypted, or has no text on any page (a scan) is an error.
func splitPDF(file, content string) (secs []Section, err error) {
	defer func() {
		// The PDF reader panics on some malformed files.
		if r := recover(); r != nil {
			secs, err = nil, fmt.Errorf("cannot read the PDF: %v", r)
		}
	}()
	if err := checkPDFSizes(content); err != nil {
		return nil, err
	}
	r, err := pdf.NewReader(strings.NewReader(content), int64(len(content)))
	if err != nil {
		return nil, fmt.Errorf("cannot read the PDF: %w", err)
	}
	pages := r.NumPage()
	headings := pdfPageHeadings(r, pages)
	s := sectioner{file: file}
	empty := true
	for i := 1; i <= pages; i++ {
		p := r.Page(i)
		if p.V.IsNull() {
			continue
		}
		text, err := p.GetPlainText(nil)
		if err != nil {
			continue // a page that cannot be read; the others can
		}
		text = cleanPDFText(text)
		if text == "" {
			continue
		}
		empty = false
		h := "p. " + strconv.Itoa(i)
		if headings[i] != "" {
			h = headings[i] + HeadingSep + h
		}
		s.setHeading(h)
		for line := range strings.Lines(text) {
			s.text(line)
		}
	}
	if empty {
		return nil, errors.New("the PDF has no text layer (a scan? export it with text, or save it as text)")
	}
	return s.done(), nil
}

// cleanPDFText makes a page's text indexable: valid UTF-8, no control
// characters but line breaks and tabs, blank lines collapsed, at most
// maxPDFPageBytes.
func cleanPDFText(text string) string {
	if len(text) > maxPDFPageBytes {
		text = cutBytes(text, maxPDFPageBytes)
	}
	text = strings.ToValidUTF8(text, " ")
	text = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' {
			return r
		}
		if forgesText(r) || r == unicode.ReplacementChar {
			return ' '
		}
		return r
	}, text)
	var b strings.Builder
	for line := range strings.Lines(text) {
		if line = strings.TrimSpace(line); line != "" {
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	return strings.TrimSpace(b.String())
}

// pdfPageHeadings maps page numbers to the outline path that covers the
// page: the first outline entry starting on it, or else the last one
// starting before it. Entries whose destination is not a page of this
// document (named destinations, links elsewhere) are left out.
func pdfPageHeadings(r *pdf.Reader, pages int) map[int]string {
	root := r.Trailer().Key("Root").Key("Outlines")
	if root.IsNull() {
		return nil
	}
	// A page is known by its dictionary as written (its references
	// included), which is unique to it.
	pageNum := make(map[string]int, pages)
	for i := 1; i <= pages; i++ {
		if p := r.Page(i); !p.V.IsNull() {
			pageNum[p.V.String()] = i
		}
	}
	type entry struct {
		path string
		page int
	}
	var entries []entry
	var walk func(item pdf.Value, path []string, depth int)
	walk = func(item pdf.Value, path []string, depth int) {
		for ; !item.IsNull() && len(entries) < maxPDFOutlineItems && depth < maxPDFOutlineDepth; item = item.Key("Next") {
			title, _ := headingTitle(strings.Map(func(r rune) rune {
				if forgesText(r) {
					return ' '
				}
				return r
			}, item.Key("Title").Text()), 0, false)
			p := append(path[:len(path):len(path)], title)
			dest := item.Key("Dest")
			if dest.Kind() != pdf.Array {
				dest = item.Key("A").Key("D")
			}
			if dest.Kind() == pdf.Array && dest.Len() > 0 && title != "" {
				if n := pageNum[dest.Index(0).String()]; n > 0 {
					entries = append(entries, entry{strings.Join(p, HeadingSep), n})
				}
			}
			walk(item.Key("First"), p, depth+1)
			if len(entries) >= maxPDFOutlineItems {
				return
			}
		}
	}
	walk(root.Key("First"), nil, 0)
	if len(entries) == 0 {
		return nil
	}
	// Outlines are in reading order; a page takes its first entry, or the
	// last one before it.
	first := make(map[int]string)
	for _, e := range entries {
		if _, ok := first[e.page]; !ok {
			first[e.page] = e.path
		}
	}
	out := make(map[int]string, pages)
	cur, last := "", make(map[int]string)
	for _, e := range entries {
		last[e.page] = e.path
	}
	for i := 1; i <= pages; i++ {
		if h, ok := first[i]; ok {
			out[i] = h
			cur = last[i]
			continue
		}
		out[i] = cur
	}
	return out
}

// The numbers in a PDF that the reader allocates by: the cross-reference
// table's object numbers and /Size, a predictor's /Columns, an xref
// stream's field widths /W.
var (
	pdfXrefRE       = regexp.MustCompile(`(?m)^[ \t]*xref[ \t]*\r?\n?((?:[ \t]*\d+[ \t]+\d+[ \t]*\r?\n?(?:[ \t]*\d+[ \t]+\d+[ \t]+[nf][ \t]*\r?\n?)*)*)`)
	pdfSubsecRE     = regexp.MustCompile(`(?m)^[ \t]*(\d+)[ \t]+(\d+)[ \t]*\r?$`)
	pdfSizeRE       = regexp.MustCompile(`/(Size|Columns)[ \t\r\n]*(-?\d+)`)
	pdfWidthsRE     = regexp.MustCompile(`/W[ \t\r\n]*\[([^\]]*)\]`)
	pdfXrefStreamRE = regexp.MustCompile(`/Type[ \t\r\n]*/XRef`)
	errPDFDamage    = errors.New("cannot read the PDF: it is damaged (sizes out of range)")
)

// checkPDFSizes refuses a PDF whose numbers would make the reader
// allocate far more than the file holds: a valid PDF has fewer objects
// than an eighth of its bytes, and small predictor and field widths. The
// reader itself trusts them, and one damaged number is enough to exhaust
// memory, which no recover catches.
func checkPDFSizes(content string) error {
	maxObjects := int64(len(content))/8 + 64
	for _, m := range pdfXrefRE.FindAllStringSubmatch(content, -1) {
		for _, sub := range pdfSubsecRE.FindAllStringSubmatch(m[1], -1) {
			start, err1 := strconv.ParseInt(sub[1], 10, 64)
			n, err2 := strconv.ParseInt(sub[2], 10, 64)
			if err1 != nil || err2 != nil || start > maxObjects || n > maxObjects || start+n > maxObjects {
				return errPDFDamage
			}
		}
	}
	for _, m := range pdfSizeRE.FindAllStringSubmatch(content, -1) {
		n, err := strconv.ParseInt(m[2], 10, 64)
		limit := maxObjects
		if m[1] == "Columns" {
			limit = 1 << 20
		}
		if err != nil || n < 0 || n > limit {
			return errPDFDamage
		}
	}
	// /W of an xref stream: in the dictionary between its "obj" and its
	// "stream" (a font's /W, glyph widths, is another thing).
	for _, loc := range pdfXrefStreamRE.FindAllStringIndex(content, -1) {
		from := strings.LastIndex(content[:loc[0]], "obj")
		to := strings.Index(content[loc[1]:], "stream")
		if from < 0 || to < 0 {
			continue
		}
		for _, m := range pdfWidthsRE.FindAllStringSubmatch(content[from:loc[1]+to], -1) {
			for _, f := range strings.Fields(m[1]) {
				if n, err := strconv.ParseInt(f, 10, 64); err != nil || n < 0 || n > 16 {
					return errPDFDamage
				}
			}
		}
	}
	return nil
}
