package slack_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/classbot/classbot/bot/slack"
)

func TestPlainText(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"plain", "Ada Lovelace", "Ada Lovelace"},
		{"typed ampersand", "Ada &amp; Bo", "Ada & Bo"},
		{"typed && in a question", "a &amp;&amp; b", "a && b"},
		{"typed angle brackets", "&lt;!channel&gt; &lt;b&gt;hi&lt;/b&gt;", "<!channel> <b>hi</b>"},
		{"typed entity: &amp; last", "&amp;lt; &amp;gt; &amp;amp;", "&lt; &gt; &amp;"},
		{"email link", "Ada <mailto:ada@example.com|ada@example.com>", "Ada ada@example.com"},
		{"email link without label", "<mailto:ada@example.com>", "ada@example.com"},
		{"link with label", "see <https://example.com/a?b=1&amp;c=2|example.com/a?b=1&amp;c=2>", "see example.com/a?b=1&c=2"},
		{"link without label", "<http://example.com>", "http://example.com"},
		{"link with empty label", "<http://example.com|>", "http://example.com"},
		{"user mention", "hi <@U0A1B2C3D|ada> and <@U0B>", "hi @ada and @U0B"},
		{"channel mention", "<#C0A1B2C3D4E|class> <#C1>", "#class #C1"},
		{"special mentions", "<!here> <!channel|channel> <!everyone>", "@here @channel @everyone"},
		{"user group", "<!subteam^S0123|@tas>", "@tas"},
		{"date", "due <!date^1392734382^{date_short}|Feb 18, 2014>", "due Feb 18, 2014"},
		{"unclosed <", "a <b", "a <b"},
		{"markup then entities", "<http://x|a &amp; b> &amp; c", "a & b & c"},
		{"multi-byte", "Zoë &amp; 李 <mailto:z@例え.jp|z@例え.jp>", "Zoë & 李 z@例え.jp"},
		{"other entities are text", "&quot;&#39;&nbsp;", "&quot;&#39;&nbsp;"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := slack.PlainText(tt.in); got != tt.want {
				t.Fatalf("PlainText(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// FuzzPlainText checks PlainText on any input, and on inputs built the way
// Slack builds them (typed text escaped, links added as markup):
//
//	go test ./bot/slack -run '^$' -fuzz FuzzPlainText -fuzztime 30s
//
// Seeds are in testdata/fuzz/FuzzPlainText.
func FuzzPlainText(f *testing.F) {
	for _, s := range []string{
		"", "Ada &amp; Bo <mailto:ada@example.com|ada@example.com>", "a &amp;&amp; b",
		"&amp;lt;", "<!channel> <@U1|ada> <#C1>", "<http://x|&lt;y&gt;>", "a <b", "<>", "<|>", "&&lt;;",
		"<!date^1^{date}|x>", "\xff<\xfe|\xfd>",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := slack.PlainText(s)

		// On any input.
		if utf8.ValidString(s) && !utf8.ValidString(out) {
			t.Fatalf("PlainText(%q) = %q: not valid UTF-8", s, out)
		}
		if len(out) > len(s) {
			t.Fatalf("PlainText(%q) = %q: longer than its input", s, out)
		}
		if strings.Count(out, "&") > strings.Count(s, "&") {
			t.Fatalf("PlainText(%q) = %q: made up an &", s, out)
		}
		if !strings.ContainsAny(out, "&<>") && slack.PlainText(out) != out {
			t.Fatalf("PlainText(%q) = %q, which PlainText changes again", s, out)
		}
		// Every & in the input starts one of the three entities, and none
		// is &amp; (so no "&amp;lt;", no double escaping): nothing of the
		// entities may be left.
		if wellFormedAmps(s) && !strings.Contains(s, "&amp;") && strings.Contains(out, "&") {
			t.Fatalf("PlainText(%q) = %q: an entity is left", s, out)
		}

		// What Slack sends for text a student typed: every &, < and >
		// escaped. PlainText must give back exactly what was typed.
		if got := slack.PlainText(slack.Escape(s)); got != s {
			t.Fatalf("PlainText(Escape(%q)) = %q, want the typed text back", s, got)
		}
		// Typed text around a link Slack made: the link becomes its label.
		n := len(s)
		before, target, label, after := s[:n/4], s[n/4:n/2], s[n/2:3*n/4], s[3*n/4:]
		target = strings.NewReplacer("|", "", "<", "", ">", "").Replace(target)
		if label != "" {
			in := slack.Escape(before) + "<https://" + slack.Escape(target) + "|" + slack.Escape(label) + ">" + slack.Escape(after)
			if got, want := slack.PlainText(in), before+label+after; got != want {
				t.Fatalf("PlainText(%q) = %q, want %q", in, got, want)
			}
		}
	})
}

// wellFormedAmps reports whether every & in s starts &amp;, &lt; or &gt;,
// as in every text Slack sends.
func wellFormedAmps(s string) bool {
	for i := strings.IndexByte(s, '&'); i >= 0; i = strings.IndexByte(s, '&') {
		rest := s[i:]
		if !strings.HasPrefix(rest, "&amp;") && !strings.HasPrefix(rest, "&lt;") && !strings.HasPrefix(rest, "&gt;") {
			return false
		}
		s = rest[1:]
	}
	return true
}
