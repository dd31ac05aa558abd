package store

import (
	"errors"
	"io"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// splitHTML splits an HTML page into sections: its <title> is the
// heading of the text before the first heading, h1 to h6 start sections
// as Markdown headings do, table rows are their cells between " | ", and
// what a reader never sees as the page's text (script, style, nav,
// noscript, template, svg, comments) is dropped. It streams the page:
// memory is a small multiple of the text kept. Strict, a heading over
// MaxHeadingChars is an error; else it is cut.
func splitHTML(file, content string, strict bool) ([]Section, error) {
	// First pass: the title, and whether the first heading is the only h1.
	first, ones := 0, 0
	var title string
	err := walkHTML(content, func(level int, text string) error {
		switch {
		case level < 0 && title == "":
			title = strings.Join(strings.Fields(text), " ")
		case level > 0:
			if first == 0 {
				first = level
			}
			if level == 1 {
				ones++
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	title, _ = headingTitle(title, 0, false)
	s := sectioner{file: file, titled: first == 1 && ones == 1, heading: title}
	err = walkHTML(content, func(level int, text string) error {
		switch {
		case level == 0:
			s.text(text)
		case level > 0:
			t, err := headingTitle(text, 0, strict)
			if err != nil {
				return err
			}
			if t != "" {
				s.head(level, t)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.done(), nil
}

// htmlDropped are the elements whose content is not the page's text.
var htmlDropped = map[atom.Atom]bool{
	atom.Script: true, atom.Style: true, atom.Nav: true, atom.Noscript: true,
	atom.Template: true, atom.Svg: true, atom.Iframe: true,
	atom.Object: true, atom.Select: true, atom.Button: true,
}

// htmlBlock are the elements that end a line of text.
var htmlBlock = map[atom.Atom]bool{
	atom.P: true, atom.Div: true, atom.Br: true, atom.Li: true, atom.Ul: true, atom.Ol: true,
	atom.Dl: true, atom.Dt: true, atom.Dd: true, atom.Section: true, atom.Article: true,
	atom.Header: true, atom.Footer: true, atom.Main: true, atom.Aside: true, atom.Blockquote: true,
	atom.Pre: true, atom.Hr: true, atom.Table: true, atom.Caption: true, atom.Figure: true,
	atom.Figcaption: true, atom.Form: true, atom.Fieldset: true, atom.Details: true,
	atom.Summary: true, atom.Address: true, atom.Body: true, atom.Html: true, atom.Head: true,
	atom.Title: true, atom.Option: true,
}

// maxHeadingBytes bounds what is kept of one heading's text: past it the
// heading is too long anyway (headingTitle decides).
const maxHeadingBytes = 16 * MaxHeadingChars

// walkHTML tokenizes content and calls emit with each line of text
// (level 0), each heading (level 1 to 6, its raw text) and the title
// (level -1), in document order. It stops at emit's first error.
func walkHTML(content string, emit func(level int, text string) error) error {
	z := html.NewTokenizer(strings.NewReader(content))
	var (
		line    strings.Builder // the line being gathered
		cell    strings.Builder // the table cell being gathered
		cells   []string        // the table row being gathered
		inRow   bool
		inCell  bool
		heading int // the level of the open heading, 0 outside one
		inTitle bool
		pre     int // depth of <pre>
		dropped int // depth of dropped elements
		space   bool
	)
	target := func() *strings.Builder {
		if inCell {
			return &cell
		}
		return &line
	}
	endLine := func() error {
		if heading != 0 || inTitle {
			return nil
		}
		if inCell {
			if cell.Len() > 0 {
				cell.WriteByte(' ')
			}
			return nil
		}
		text := strings.TrimSpace(line.String())
		line.Reset()
		space = false
		if text == "" {
			return nil
		}
		return emit(0, text)
	}
	endCell := func() {
		space = false
		if inCell {
			cells = append(cells, strings.Join(strings.Fields(cell.String()), " "))
			cell.Reset()
			inCell = false
		}
	}
	endRow := func() error {
		endCell()
		if !inRow {
			return nil
		}
		inRow = false
		row := strings.TrimSpace(strings.Join(cells, " | "))
		cells = cells[:0]
		if strings.Trim(row, "| ") == "" {
			return nil
		}
		if err := endLine(); err != nil {
			return err
		}
		return emit(0, row)
	}
	// endHeading ends the open heading; a block that starts inside one
	// ends it too, so bad markup cannot make a page one long heading.
	endHeading := func() error {
		if heading == 0 {
			return nil
		}
		text := line.String()
		line.Reset()
		level := heading
		heading, space = 0, false
		return emit(level, text)
	}
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			if err := z.Err(); !errors.Is(err, io.EOF) {
				return err
			}
			if err := endHeading(); err != nil {
				return err
			}
			if err := endRow(); err != nil {
				return err
			}
			return endLine()
		case html.TextToken:
			if dropped > 0 {
				continue
			}
			text := string(z.Text())
			b := target()
			switch {
			case heading != 0 || inTitle:
				if room := maxHeadingBytes + 1 - b.Len(); room > 0 {
					// Past maxHeadingBytes the heading is too long:
					// headingTitle says so, or cuts it.
					b.WriteString(cutBytes(text, room))
				}
			case pre > 0 && !inCell:
				for i, l := range strings.Split(text, "\n") {
					if i > 0 {
						if err := emit(0, strings.TrimRight(line.String(), " \t\r")); err != nil {
							return err
						}
						line.Reset()
					}
					line.WriteString(l)
				}
			default:
				// Inline elements split text: a space is kept between
				// two pieces only where the page has one.
				space = space || startsWithSpace(text)
				first := true
				for w := range strings.FieldsSeq(text) {
					if (!first || space) && b.Len() > 0 {
						b.WriteByte(' ')
					}
					b.WriteString(w)
					first = false
				}
				space = endsWithSpace(text) || (space && strings.TrimSpace(text) == "")
			}
		case html.StartTagToken, html.SelfClosingTagToken, html.EndTagToken:
			a := tagAtom(z.Raw())
			start := tt != html.EndTagToken
			if htmlDropped[a] {
				if tt == html.StartTagToken {
					dropped++
				} else if tt == html.EndTagToken && dropped > 0 {
					dropped--
				}
				continue
			}
			if dropped > 0 {
				continue
			}
			if start && heading != 0 && (htmlBlock[a] || a == atom.Tr || a == atom.Td || a == atom.Th) && a != atom.Br {
				if err := endHeading(); err != nil {
					return err
				}
			}
			switch a {
			case atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6:
				if start && heading == 0 && !inCell {
					if err := endRow(); err != nil {
						return err
					}
					if err := endLine(); err != nil {
						return err
					}
					heading = int(a.String()[1] - '0')
				} else if !start {
					if err := endHeading(); err != nil {
						return err
					}
				}
				continue
			case atom.Title:
				if start && tt == html.StartTagToken && heading == 0 {
					inTitle = true
				} else if !start && inTitle {
					text := line.String()
					line.Reset()
					inTitle = false
					if err := emit(-1, text); err != nil {
						return err
					}
				}
				continue
			case atom.Tr:
				if err := endRow(); err != nil {
					return err
				}
				inRow = start
				continue
			case atom.Td, atom.Th:
				endCell()
				if start {
					inRow, inCell = true, true
				}
				continue
			case atom.Table, atom.Thead, atom.Tbody, atom.Tfoot:
				if err := endRow(); err != nil {
					return err
				}
				continue
			case atom.Pre:
				if pre > 0 && !inCell {
					// The last line of code keeps its indentation.
					if t := strings.TrimRight(line.String(), " \t\r"); strings.TrimSpace(t) != "" {
						if err := emit(0, t); err != nil {
							return err
						}
					}
					line.Reset()
				}
				if err := endLine(); err != nil {
					return err
				}
				if tt == html.StartTagToken {
					pre++
				} else if !start && pre > 0 {
					pre--
				}
				continue
			case atom.Li:
				if start {
					if err := endLine(); err != nil {
						return err
					}
					if !inCell && heading == 0 {
						line.WriteString("- ")
					}
				}
				continue
			}
			if htmlBlock[a] {
				if err := endLine(); err != nil {
					return err
				}
			}
		}
	}
}

func startsWithSpace(s string) bool { return s != "" && strings.ContainsAny(s[:1], " \t\r\n\f") }
func endsWithSpace(s string) bool   { return s != "" && strings.ContainsAny(s[len(s)-1:], " \t\r\n\f") }

// cutBytes returns the longest prefix of s of at most n bytes that does
// not split a rune.
func cutBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// tagAtom reads a tag's name from its raw text ("<H2 class=x>", "</b>")
// without the allocation Tokenizer.TagName makes; 0 for a name that is
// not a known element.
func tagAtom(raw []byte) atom.Atom {
	var buf [16]byte
	i := 1 // past '<'
	if i < len(raw) && raw[i] == '/' {
		i++
	}
	n := 0
	for ; i < len(raw) && n < len(buf); i++ {
		c := raw[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		default:
			return atom.Lookup(buf[:n])
		}
		buf[n] = c
		n++
	}
	if n == len(buf) {
		return 0
	}
	return atom.Lookup(buf[:n])
}
