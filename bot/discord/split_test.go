package discord_test

import (
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/classbot/classbot/bot/discord"
)

func TestDiscordSplit(t *testing.T) {
	tests := []struct {
		name      string
		text      string
		wantParts int
	}{
		{"empty", "", 1},
		{"short", "hello", 1},
		{"exactly 2000", strings.Repeat("a", 2000), 1},
		{"lines", strings.Repeat(strings.Repeat("b", 99)+"\n", 30), 2},
		{"words", strings.Repeat("word ", 1000), 3},
		{"one long word", strings.Repeat("x", 4500), 3},
		{"emoji count double", strings.Repeat("😀", 1500), 2},
		{"capped", strings.Repeat("word ", 12400), discord.MaxMessages},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parts := discord.Split(tt.text)
			if len(parts) != tt.wantParts {
				t.Fatalf("%d parts, want %d", len(parts), tt.wantParts)
			}
			for i, p := range parts {
				if n := len(utf16.Encode([]rune(p))); n > discord.MaxMessageLen {
					t.Fatalf("part %d has %d UTF-16 units", i, n)
				}
				if tt.name == "words" && (strings.HasPrefix(p, "ord") || strings.HasSuffix(p, "wor")) {
					t.Fatalf("part %d cuts a word: ...%q", i, p[len(p)-10:])
				}
			}
			if tt.name == "capped" {
				if last := parts[len(parts)-1]; !strings.HasSuffix(last, "…") {
					t.Fatalf("last part ends %q, want an ellipsis", last[len(last)-10:])
				}
				return
			}
			if strings.Join(strings.Fields(strings.Join(parts, " ")), " ") != strings.Join(strings.Fields(tt.text), " ") &&
				strings.Join(parts, "") != strings.TrimSpace(tt.text) {
				t.Fatal("parts lose text")
			}
		})
	}
}
