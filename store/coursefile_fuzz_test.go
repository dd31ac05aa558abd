package store_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/classbot/classbot/store"
)

// FuzzSplitSections checks the sectioning's promises on any text: no part
// is over MaxSectionChars runes or empty, parts are valid UTF-8 when the
// text is, sequence numbers count from 0; and, for a plain text file
// (no headings, no markup), every word is in some part. Markdown's markup
// (thematic breaks, table pipes, comments, Liquid, link definitions, front
// matter) is removed by design, and its parsers' tests check what is kept.
func FuzzSplitSections(f *testing.F) {
	f.Add("# Title\nintro\n## A\ntext\n### B\nmore\n")
	f.Add("```\n# not a heading\n```\n## H ##\nx")
	f.Add(strings.Repeat("word ", 700))
	f.Add(strings.Repeat("x", 5000))
	f.Add("line\n" + strings.Repeat("a long line of words ", 80) + "\nend")
	f.Fuzz(func(t *testing.T, text string) {
		if !utf8.ValidString(text) {
			return
		}
		for _, file := range []string{"notes.md", "notes.txt"} {
			got := store.SplitSections(file, text)
			var all strings.Builder
			for i, s := range got {
				if n := utf8.RuneCountInString(s.Text); n > store.MaxSectionChars || strings.TrimSpace(s.Text) == "" {
					t.Fatalf("%s: part %d has %d runes: %q", file, i, n, s.Text)
				}
				if s.Seq != i || s.File != file || !utf8.ValidString(s.Text) {
					t.Fatalf("%s: part %d: %+v", file, i, s)
				}
				all.WriteString(s.Heading + " " + s.Text + "\n")
			}
			if file != "notes.txt" {
				continue
			}
			joined := strings.Join(strings.Fields(all.String()), "")
			for _, w := range strings.Fields(text) {
				if !strings.Contains(joined, w) {
					t.Fatalf("%s: word %q lost", file, w)
				}
			}
		}
	})
}

// FuzzParseCourseFile checks every text parser (Markdown, HTML, text) on
// any input: no panic; text that is UTF-8 without NUL is refused only for
// a heading over the limit; sections are within MaxSectionChars, never
// empty, valid UTF-8, numbered from 0, with every heading of the path
// within MaxHeadingChars.
func FuzzParseCourseFile(f *testing.F) {
	f.Add(byte(0), "---\ntitle: T\ndate: 2024-01-02\n---\nIntro\n=====\ntext <!-- c\n# x\n--> more {% if a %}b{% endif %}\n| a | b |\n|---|---|\n| 1 | 2 |\n")
	f.Add(byte(0), "+++\ntitle = \"T\"\n[extra]\ndue = \"May 1\"\n+++\n```x```\n## H\n~~~\n# c\n~~~\n")
	f.Add(byte(1), "<title>T</title><nav>n</nav><h1>A</h1><p>x<b>y</b> z</p><table><tr><td>1<td>2</table><pre> a\n b</pre><h2>B")
	f.Add(byte(1), "<h3><script>x</script>H<p>p</h3>")
	f.Add(byte(2), "plain\ntext\n")
	f.Fuzz(func(t *testing.T, kind byte, text string) {
		name := []string{"n.md", "n.html", "n.txt"}[int(kind)%3]
		got, err := store.ParseCourseFile(name, text)
		if err != nil {
			if utf8.ValidString(text) && !strings.Contains(text, "\x00") && !strings.Contains(err.Error(), "heading") {
				t.Fatalf("%s refused: %v", name, err)
			}
			return
		}
		for i, s := range got {
			if n := utf8.RuneCountInString(s.Text); n > store.MaxSectionChars || strings.TrimSpace(s.Text) == "" {
				t.Fatalf("part %d has %d runes: %q", i, n, s.Text)
			}
			if s.Seq != i || s.File != name || !utf8.ValidString(s.Text) || !utf8.ValidString(s.Heading) {
				t.Fatalf("part %d: %+v", i, s)
			}
			for _, h := range strings.Split(s.Heading, store.HeadingSep) {
				if utf8.RuneCountInString(h) > store.MaxHeadingChars {
					t.Fatalf("part %d: heading of %d runes", i, utf8.RuneCountInString(h))
				}
			}
		}
	})
}
