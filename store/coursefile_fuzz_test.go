package store_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/classbot/classbot/store"
)

// FuzzSplitSections checks the sectioning's promises on any text: no part
// is over MaxSectionChars runes or empty, parts are valid UTF-8 when the
// text is, sequence numbers count from 0, and, in a text without headings,
// every word is in some part (a heading with no text of its own gives no
// section, so its words may be gone).
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
		got := store.SplitSections("notes.md", text)
		var all strings.Builder
		for i, s := range got {
			if n := utf8.RuneCountInString(s.Text); n > store.MaxSectionChars || strings.TrimSpace(s.Text) == "" {
				t.Fatalf("part %d has %d runes: %q", i, n, s.Text)
			}
			if s.Seq != i || s.File != "notes.md" || !utf8.ValidString(s.Text) {
				t.Fatalf("part %d: %+v", i, s)
			}
			all.WriteString(s.Heading + " " + s.Text + "\n")
		}
		if strings.Contains(text, "#") {
			return
		}
		joined := strings.Join(strings.Fields(all.String()), "")
		for _, w := range strings.Fields(text) {
			if !strings.Contains(joined, w) {
				t.Fatalf("word %q lost", w)
			}
		}
	})
}
