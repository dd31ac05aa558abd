package slack_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/classbot/classbot/bot/slack"
)

func TestEscape(t *testing.T) {
	got := slack.Escape("<!channel> <@U123> Tom & Jerry <https://x.example|y>")
	want := "&lt;!channel&gt; &lt;@U123&gt; Tom &amp; Jerry &lt;https://x.example|y&gt;"
	if got != want {
		t.Fatalf("Escape = %q, want %q", got, want)
	}
}

func TestMessages(t *testing.T) {
	tests := []struct {
		name  string
		text  string
		parts int  // how many messages
		cut   bool // the text was too long for MaxMessages and was cut short
	}{
		{"empty", "", 1, false},
		{"short", "Hello <@U1> & you", 1, false},
		{"lines", strings.Repeat(strings.Repeat("line ", 100)+"\n", 20), 4, false},
		{"one long word of multi-byte runes", strings.Repeat("é€😀", 3000), 3, false},
		{"entities only", strings.Repeat("&", 2000), 4, false},
		{"too long", strings.Repeat("word ", 4000), slack.MaxMessages, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parts := slack.Messages(tt.text)
			if len(parts) != tt.parts {
				t.Fatalf("%d messages, want %d", len(parts), tt.parts)
			}
			var joined strings.Builder
			for i, p := range parts {
				if !utf8.ValidString(p) {
					t.Fatalf("message %d is not valid UTF-8", i)
				}
				if n := utf8.RuneCountInString(p); n > slack.MaxMessageLen {
					t.Fatalf("message %d has %d characters, more than %d", i, n, slack.MaxMessageLen)
				}
				escapedOnly(t, p) // no entity was cut in half
				if i > 0 && strings.ContainsAny(tt.text, " \n") {
					joined.WriteString(" ") // cut at a space or line break (a lone long word is cut anywhere)
				}
				joined.WriteString(unescape(p))
			}
			got := strings.Join(strings.Fields(joined.String()), " ")
			want := strings.Join(strings.Fields(tt.text), " ")
			if tt.cut {
				last := parts[len(parts)-1]
				if !strings.HasSuffix(last, "…") {
					t.Fatalf("the last message of a cut answer ends %q, want …", last[len(last)-10:])
				}
				got = strings.TrimSuffix(got, "…")
				if !strings.HasPrefix(want, got) || len(got) < 4*slack.MaxMessageLen {
					t.Fatal("the messages are not the beginning of the answer")
				}
				return
			}
			if got != want {
				t.Fatal("the messages do not add up to the text")
			}
		})
	}
}
