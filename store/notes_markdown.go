package store

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"go.yaml.in/yaml/v3"
)

// splitMarkdown splits a Markdown file into sections (the rules are in
// docs/course.md, "From a folder to sections"). Strict, a heading over
// MaxHeadingChars is an error; else it is cut.
func splitMarkdown(file, content string, strict bool) ([]Section, error) {
	fm, body, skipped := frontMatter(content)

	// First pass: is the first heading the only level-1 heading?
	first, ones := 0, 0
	var sc mdScanner
	for line := range strings.Lines(body) {
		if l := sc.next(line); l.kind == mdHeading || l.kind == mdSetext {
			if first == 0 {
				first = l.level
			}
			if l.level == 1 {
				ones++
			}
		}
	}

	s := sectioner{file: file, titled: first == 1 && ones == 1, heading: fm.title}
	for _, l := range fm.keep {
		s.text(l)
	}
	sc = mdScanner{}
	paraStart := 0 // where the open paragraph starts in s.body
	lineNo := skipped
	for line := range strings.Lines(body) {
		lineNo++
		l := sc.next(line)
		switch l.kind {
		case mdHeading, mdSetext:
			raw := l.text
			if l.kind == mdSetext {
				raw = string(s.body[paraStart:])
				s.body = s.body[:paraStart]
			}
			title, err := headingTitle(raw, lineNo, strict)
			if err != nil {
				return nil, err
			}
			if title != "" {
				s.head(l.level, title)
			}
		case mdText:
			if l.para && !l.more {
				paraStart = len(s.body)
			}
			s.text(l.text)
		case mdCode:
			s.text(l.text)
		}
	}
	return s.done(), nil
}

type mdKind int

const (
	mdText    mdKind = iota
	mdCode           // a line of a fenced code block, or its fence
	mdHeading        // an ATX heading: "## Title"
	mdSetext         // a setext underline: the open paragraph is the heading
	mdDropped        // a line with nothing to index: a table's |---| line, a thematic break
)

// mdLine is one line of Markdown as mdScanner sees it.
type mdLine struct {
	kind  mdKind
	text  string // the line, comments and template tags removed (a heading: its raw title)
	level int    // a heading's level
	para  bool   // a line of a paragraph (a setext underline may follow)
	more  bool   // a paragraph line that continues the one before
}

// mdScanner reads Markdown line by line: what each line is, comments and
// template tags removed, code fences tracked.
type mdScanner struct {
	clean cleaner
	fence fence
	para  bool // the line before is a paragraph line
	other bool // the line before is a list item, table row, quote...: no paragraph starts under it
}

func (sc *mdScanner) next(raw string) mdLine {
	raw = strings.TrimRight(raw, "\r\n")
	if !sc.clean.busy() && sc.fence.step(raw) {
		sc.para, sc.other = false, false
		return mdLine{kind: mdCode, text: raw}
	}
	line := sc.clean.line(raw)
	wasPara := sc.para
	sc.para, sc.other = false, false
	if level, title, ok := atxHeading(line); ok {
		return mdLine{kind: mdHeading, text: title, level: level}
	}
	trimmed := strings.TrimSpace(line)
	if level := setextUnderline(line); level > 0 && wasPara {
		return mdLine{kind: mdSetext, level: level}
	}
	switch {
	case trimmed == "":
		return mdLine{kind: mdText}
	case isTableRule(trimmed) || isThematicBreak(trimmed) || linkDefinition(line):
		return mdLine{kind: mdDropped}
	case strings.HasPrefix(trimmed, "|"):
		sc.other = true
		return mdLine{kind: mdText, text: tableRow(trimmed)}
	case paragraphLine(line):
		sc.para = true
		return mdLine{kind: mdText, text: line, para: true, more: wasPara}
	}
	sc.other = true
	return mdLine{kind: mdText, text: line}
}

// paragraphLine reports whether a line can be part of a paragraph, and so
// of a setext heading: not indented code, a list item, a quote or HTML.
func paragraphLine(line string) bool {
	indent := len(line) - len(strings.TrimLeft(line, " "))
	if indent > 3 || strings.HasPrefix(line, "\t") {
		return false
	}
	s := line[indent:]
	switch {
	case strings.HasPrefix(s, "- "), strings.HasPrefix(s, "* "), strings.HasPrefix(s, "+ "),
		strings.HasPrefix(s, ">"), strings.HasPrefix(s, "<"), strings.HasPrefix(s, "|"):
		return false
	}
	digits := len(s) - len(strings.TrimLeft(s, "0123456789"))
	if digits > 0 && digits < 10 && len(s) > digits+1 && (s[digits] == '.' || s[digits] == ')') && s[digits+1] == ' ' {
		return false // "1. item"
	}
	return true
}

// linkDefinition reports a reference-style link's definition,
// "[label]: https://example.com "title"": the page shows its label where
// the link is used and never the line itself, whose address words would
// otherwise match questions ("[blog]: @/blog/_index.md"). A footnote
// ("[^1]: text") is shown, and kept.
func linkDefinition(line string) bool {
	indent := len(line) - len(strings.TrimLeft(line, " "))
	if indent > 3 {
		return false
	}
	s := line[indent:]
	if !strings.HasPrefix(s, "[") || strings.HasPrefix(s, "[^") {
		return false
	}
	end := strings.Index(s, "]:")
	if end < 2 || strings.ContainsAny(s[1:end], "[]") {
		return false
	}
	rest := strings.Fields(s[end+2:])
	switch {
	case len(rest) == 0:
		return false
	case len(rest) == 1:
		return true
	}
	// A title after the address: "..." '...' or (...), nothing after it.
	title := strings.Join(rest[1:], " ")
	open, last := title[0], title[len(title)-1]
	return len(title) >= 2 && (open == '"' && last == '"' || open == '\'' && last == '\'' || open == '(' && last == ')')
}

// setextUnderline returns 1 for a "===" line, 2 for a "---" line, else 0.
func setextUnderline(line string) int {
	s := strings.TrimRight(line, " \t")
	indent := len(s) - len(strings.TrimLeft(s, " "))
	s = s[indent:]
	if indent > 3 || s == "" {
		return 0
	}
	switch strings.Trim(s, string(s[0])) {
	case "":
		if s[0] == '=' {
			return 1
		}
		if s[0] == '-' {
			return 2
		}
	}
	return 0
}

// isTableRule reports a table's header rule: "|---|:--:|", "--- | ---".
func isTableRule(s string) bool {
	if !strings.Contains(s, "|") || !strings.Contains(s, "-") {
		return false
	}
	return strings.Trim(s, "|-: \t") == ""
}

// isThematicBreak reports "***", "___", "- - -" and the like.
func isThematicBreak(s string) bool {
	if len(s) < 3 {
		return false
	}
	c := s[0]
	if c != '*' && c != '_' && c != '-' {
		return false
	}
	return strings.Trim(s, string(c)+" \t") == "" && strings.Count(s, string(c)) >= 3
}

// tableRow writes a table row as its cells between " | ": "| a | b |" -> "a | b".
func tableRow(s string) string {
	s = strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(s, "|"), "|"))
	cells := strings.Split(s, "|")
	for i, c := range cells {
		cells[i] = strings.TrimSpace(c)
	}
	return strings.Join(cells, " | ")
}

// fence tracks fenced code blocks line by line.
type fence struct {
	char byte // '`' or '~' while a block is open
	n    int  // the opening fence's length; 0 outside a block
}

// step reports whether line opens a fenced code block, is inside one or
// closes it. A closing fence is the opening's character, at least as many,
// and nothing else; "```code```" on one line is inline code, not a fence.
func (f *fence) step(line string) bool {
	s := strings.TrimSpace(line)
	if f.n > 0 {
		if run := len(s) - len(strings.TrimLeft(s, string(f.char))); run >= f.n && run == len(s) {
			f.n = 0
		}
		return true
	}
	if len(s) < 3 || (s[0] != '`' && s[0] != '~') {
		return false
	}
	run := len(s) - len(strings.TrimLeft(s, string(s[0])))
	if run < 3 || (s[0] == '`' && strings.Contains(s[run:], "`")) {
		return false
	}
	f.char, f.n = s[0], run
	return true
}

// atxHeading parses "## Title ##" (up to three spaces of indentation); the
// title is returned raw, for headingTitle.
func atxHeading(line string) (level int, title string, ok bool) {
	s := strings.TrimLeft(line, " ")
	if len(line)-len(s) > 3 {
		return 0, "", false
	}
	for level < len(s) && s[level] == '#' {
		level++
	}
	if level == 0 || level > 6 || (level < len(s) && s[level] != ' ' && s[level] != '\t') {
		return 0, "", false
	}
	title = strings.TrimSpace(s[level:])
	if t := strings.TrimRight(title, "#"); t != title && (t == "" || strings.HasSuffix(t, " ")) {
		title = strings.TrimSpace(t)
	}
	return level, title, strings.TrimSpace(title) != ""
}

// cleaner removes what a reader of the page never sees, line by line:
// HTML comments (<!-- -->, across lines), Liquid comments ({% comment %}
// to {% endcomment %}), Liquid tags and outputs ({% %}, {{ }}, on one
// line) and kramdown attribute lists ({: .class }).
type cleaner struct {
	comment       bool // inside <!-- -->
	liquidComment bool // inside {% comment %}
}

// busy reports whether the cleaner is inside a comment, where a code
// fence is not one.
func (c *cleaner) busy() bool { return c.comment || c.liquidComment }

func (c *cleaner) line(s string) string {
	if !c.busy() && !strings.Contains(s, "<!--") && !strings.Contains(s, "{%") &&
		!strings.Contains(s, "{{") && !strings.Contains(s, "{:") {
		return s
	}
	var b strings.Builder
	for s != "" {
		switch {
		case c.comment:
			j := strings.Index(s, "-->")
			if j < 0 {
				return b.String()
			}
			s, c.comment = s[j+3:], false
		case c.liquidComment:
			j := strings.Index(s, "{%")
			if j < 0 {
				return b.String()
			}
			k := strings.Index(s[j:], "%}")
			if k < 0 {
				return b.String()
			}
			if liquidTag(s[j+2:j+k]) == "endcomment" {
				c.liquidComment = false
			}
			s = s[j+k+2:]
		default:
			j := indexFirst(s, "<!--", "{%", "{{", "{:")
			if j < 0 {
				b.WriteString(s)
				return b.String()
			}
			b.WriteString(s[:j])
			s = s[j:]
			switch {
			case strings.HasPrefix(s, "<!--"):
				s, c.comment = s[4:], true
			case strings.HasPrefix(s, "{:"):
				if k := strings.IndexByte(s, '}'); k > 0 {
					s = s[k+1:]
				} else {
					b.WriteString(s[:2])
					s = s[2:]
				}
			default: // "{%" or "{{": a tag ends on its line, else it is text
				end := "%}"
				if s[1] == '{' {
					end = "}}"
				}
				k := strings.Index(s[2:], end)
				if k < 0 {
					b.WriteString(s[:2])
					s = s[2:]
					continue
				}
				if end == "%}" && liquidTag(s[2:2+k]) == "comment" {
					c.liquidComment = true
				}
				s = s[2+k+2:]
			}
		}
	}
	return b.String()
}

// liquidTag returns the name of a Liquid tag from its inside: "- comment -" -> "comment".
func liquidTag(inside string) string {
	f := strings.Fields(strings.Trim(inside, "-"))
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

// indexFirst returns the index of the first of the needles in s, or -1.
func indexFirst(s string, needles ...string) int {
	first := -1
	for _, n := range needles {
		if i := strings.Index(s, n); i >= 0 && (first < 0 || i < first) {
			first = i
		}
	}
	return first
}

// frontMatterMax bounds the front matter a parser is given; a larger
// block is read as text.
const frontMatterMax = 64 << 10

// pageMatter is what front matter gives the page: its title (the heading
// of the text before the first heading) and the lines a search should
// find (dates, due dates, times, places).
type pageMatter struct {
	title string
	keep  []string
}

// frontMatter splits YAML ("---") or TOML ("+++") front matter from the
// body. It returns the body and how many lines the front matter took. A
// block that does not parse as a table of keys is left in the body.
func frontMatter(content string) (pageMatter, string, int) {
	content = strings.TrimPrefix(content, "\ufeff")
	var delim string
	switch {
	case strings.HasPrefix(content, "---\n"), strings.HasPrefix(content, "---\r\n"):
		delim = "---"
	case strings.HasPrefix(content, "+++\n"), strings.HasPrefix(content, "+++\r\n"):
		delim = "+++"
	default:
		return pageMatter{}, content, 0
	}
	lines := 1
	start := strings.IndexByte(content, '\n') + 1
	for i := start; i < len(content) && i-start <= frontMatterMax; {
		j := strings.IndexByte(content[i:], '\n')
		end := len(content)
		if j >= 0 {
			end = i + j + 1
		}
		lines++
		line := strings.TrimRight(content[i:end], " \t\r\n")
		if line == delim || (delim == "---" && line == "...") {
			block := content[start:i]
			var pm pageMatter
			var ok bool
			if delim == "---" {
				pm, ok = yamlMatter(block)
			} else {
				pm, ok = tomlMatter(block)
			}
			if !ok {
				return pageMatter{}, content, 0
			}
			return pm, content[end:], lines
		}
		i = end
	}
	return pageMatter{}, content, 0
}

// keptMatterKey reports the front matter keys whose values a student may
// ask about: dates and times, due dates, places, and who someone on a
// staff page is (role, email, section) or what the page is about
// (description, summary).
func keptMatterKey(key string) bool {
	k := strings.ToLower(key)
	for _, w := range []string{"date", "due", "deadline", "time", "hours", "when", "where", "location", "room",
		"role", "email", "section", "description", "summary", "subtitle", "instructor", "speaker", "phone"} {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

// yamlMatter reads YAML front matter, keeping keys in their order.
func yamlMatter(block string) (pageMatter, bool) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(block), &doc); err != nil {
		return pageMatter{}, false
	}
	if doc.Kind == 0 { // empty front matter
		return pageMatter{}, true
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return pageMatter{}, false
	}
	var pm pageMatter
	top := doc.Content[0]
	var name string
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		if v.Kind == yaml.ScalarNode && k.Value == "title" {
			pm.title = v.Value
		}
		if v.Kind == yaml.ScalarNode && k.Value == "name" {
			name = v.Value
		}
	}
	if pm.title == "" {
		pm.title = name
	}
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				if v.Kind == yaml.ScalarNode {
					if keptMatterKey(k.Value) && strings.TrimSpace(v.Value) != "" {
						pm.keep = append(pm.keep, k.Value+": "+v.Value)
					}
					continue
				}
				walk(v)
			}
		case yaml.SequenceNode:
			for _, c := range n.Content {
				walk(c)
			}
		}
	}
	walk(top)
	pm.title = strings.Join(strings.Fields(pm.title), " ")
	return pm, true
}

// tomlMatter reads TOML front matter, keeping keys in their order.
func tomlMatter(block string) (pageMatter, bool) {
	var m map[string]any
	md, err := toml.Decode(block, &m)
	if err != nil {
		return pageMatter{}, false
	}
	var pm pageMatter
	if t, ok := m["title"].(string); ok {
		pm.title = t
	} else if n, ok := m["name"].(string); ok {
		pm.title = n
	}
	for _, key := range md.Keys() {
		if !keptMatterKey(key[len(key)-1]) {
			continue
		}
		var v any = m
		for _, part := range key {
			t, ok := v.(map[string]any)
			if !ok {
				v = nil
				break
			}
			v = t[part]
		}
		if s := tomlScalar(v); s != "" {
			pm.keep = append(pm.keep, key[len(key)-1]+" = "+s)
		}
	}
	pm.title = strings.Join(strings.Fields(pm.title), " ")
	return pm, true
}

// tomlScalar writes a TOML value as TOML does; "" for a table or array.
func tomlScalar(v any) string {
	switch v := v.(type) {
	case string:
		if strings.TrimSpace(v) == "" {
			return ""
		}
		return strconv.Quote(v)
	case time.Time:
		if v.Hour() == 0 && v.Minute() == 0 && v.Second() == 0 && v.Nanosecond() == 0 {
			return v.Format(time.DateOnly)
		}
		return v.Format(time.RFC3339)
	case int64, float64, bool:
		return fmt.Sprint(v)
	}
	return ""
}
