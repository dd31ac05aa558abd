package chunk_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/classbot/classbot/internal/chunk"
)

func one(rune) int { return 1 }

func TestSplit(t *testing.T) {
	tests := []struct {
		name     string
		text     string
		max      int
		maxParts int
		want     []string
	}{
		{"empty", "", 10, 0, []string{""}},
		{"fits", "  hello  ", 10, 0, []string{"hello"}},
		{"at a line break", "aaaa bb\ncccc", 10, 0, []string{"aaaa bb", "cccc"}},
		{"at a space", "aaaa bbbb cccc", 10, 0, []string{"aaaa bbbb", "cccc"}},
		{"inside a long word", "abcdefghijkl", 5, 0, []string{"abcde", "fghij", "kl"}},
		{"capped with an ellipsis", "aaaa bbbb cccc dddd", 5, 2, []string{"aaaa", "bbbb…"}},
		{"cap not reached", "aaaa bbbb", 5, 2, []string{"aaaa", "bbbb"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := chunk.Split(tt.text, tt.max, tt.maxParts, one)
			if strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) {
				t.Fatalf("Split(%q) = %q, want %q", tt.text, got, tt.want)
			}
		})
	}
}

func TestSplitCostAndRunes(t *testing.T) {
	// Each "&" costs 5 (Slack's &amp;); parts stay within max and never
	// split a multi-byte rune.
	cost := func(r rune) int {
		if r == '&' {
			return 5
		}
		return 1
	}
	text := strings.Repeat("é&😀 ", 400)
	parts := chunk.Split(text, 50, 0, cost)
	var total int
	for i, p := range parts {
		if !utf8.ValidString(p) {
			t.Fatalf("part %d is not valid UTF-8", i)
		}
		n := 0
		for _, r := range p {
			n += cost(r)
		}
		if n > 50 {
			t.Fatalf("part %d costs %d > 50", i, n)
		}
		total += utf8.RuneCountInString(strings.ReplaceAll(p, " ", ""))
	}
	if want := 3 * 400; total != want {
		t.Fatalf("parts hold %d non-space runes, want %d (nothing lost)", total, want)
	}
}
