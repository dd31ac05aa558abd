package bot_test

import (
	"errors"
	"net/mail"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"

	"github.com/classbot/classbot/bot"
)

// The fuzz tests below check ValidateName, ValidateEmail and
// ValidateQuestion against invariants written independently of the code
// under test. Their seed corpus is in testdata/fuzz/<name>/ plus the f.Add
// calls. Run one briefly with
//
//	go test -run '^$' -fuzz '^FuzzValidateName$' -fuzztime 10s ./bot/

// Characters an accepted name must never hold.
const forbiddenInName = "" +
	"\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069" + // bidi controls
	"\u200b\u2060\ufeff" + // zero-width spaces
	"\u00ad" + // soft hyphen (stripped)
	"\t\u00a0\u2003\u3000" + // space separators other than ' ' (mapped)
	"@\uff20\ufe6b" // at signs: no email in a name

func FuzzValidateName(f *testing.F) {
	for _, s := range []string{
		"Ada Lovelace", "  Zoë Ñúñez-O'Brien ", "علی مهدی\u200cزاده", "Ada 👩\u200d💻",
		"Ada\u00a0\tLove\u00adlace", "\u3164", "\u2800", "Z\u0301\u0301\u0301\u0301\u0301",
		"Ada a@b.com", "Ada\u202eecalvoL", "a\u200b", "\u200d", "\xff", strings.Repeat("é", 101),
		"Ada\x00Lovelace",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := bot.ValidateName(in)
		if err != nil {
			var ue *bot.UserError
			if got != "" || !errors.As(err, &ue) || ue.Msg == "" {
				t.Fatalf("ValidateName(%q) = %q, %v; want \"\" and a *UserError", in, got, err)
			}
			return
		}
		if !utf8.ValidString(got) || strings.IndexByte(got, 0) >= 0 {
			t.Fatalf("accepted %q, which PostgreSQL cannot store (invalid UTF-8 or a NUL byte)", got)
		}
		if n := utf8.RuneCountInString(got); n < 1 || n > bot.MaxNameLen {
			t.Fatalf("accepted %q of %d characters", got, n)
		}
		if i := strings.IndexAny(got, forbiddenInName); i >= 0 {
			t.Fatalf("accepted %q holding %U", got, []rune(got[i:])[0])
		}
		if strings.TrimSpace(got) != got || strings.Contains(got, "  ") {
			t.Fatalf("accepted %q with untrimmed or doubled spaces", got)
		}
		visible, marks := false, 0
		runes := []rune(got)
		isJoiner := func(r rune) bool { return r == '\u200c' || r == '\u200d' }
		for i, r := range runes {
			switch {
			case isJoiner(r):
				if i == 0 || i == len(runes)-1 || runes[i-1] == ' ' || runes[i+1] == ' ' || isJoiner(runes[i-1]) || isJoiner(runes[i+1]) {
					t.Fatalf("accepted %q with a joiner at an edge of a word", got)
				}
			case !unicode.IsPrint(r):
				t.Fatalf("accepted %q holding unprintable %U", got, r)
			case unicode.Is(unicode.Mn, r) || unicode.Is(unicode.Mc, r) || unicode.Is(unicode.Me, r):
				if marks++; marks > bot.MaxCombiningMarks {
					t.Fatalf("accepted %q with %d combining marks in a row", got, marks)
				}
			default:
				marks = 0
			}
			switch r {
			case '\u115f', '\u1160', '\u3164', '\uffa0', '\u2800':
			default:
				if unicode.IsLetter(r) || unicode.IsNumber(r) {
					visible = true
				}
			}
		}
		if !visible {
			t.Fatalf("accepted %q without a visible letter or digit", got)
		}
		if again, err := bot.ValidateName(got); again != got || err != nil {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", in, got, again, err)
		}
	})
}

func FuzzValidateEmail(f *testing.F) {
	for _, s := range []string{
		"ada@example.com", "Ada.Lovelace@Example.COM", "<mailto:ada@example.com|ada@example.com>",
		"ada@bücher.de", "ada@xn--bcher-kva.de", "a@b", "a@[127.0.0.1]", "a@127.0.0.1",
		strings.Repeat("a", 65) + "@example.com", "Zed <zed@example.org>", "ada@example\u3002com",
		"İ@example.com", "ada@-x.com", "ada@xn--zz.com", "li@例え.テスト", "ada\x00@example.com", "ada@example.com\xff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := bot.ValidateEmail(in)
		if err != nil {
			var ue *bot.UserError
			if got != "" || !errors.As(err, &ue) || ue.Msg == "" {
				t.Fatalf("ValidateEmail(%q) = %q, %v; want \"\" and a *UserError", in, got, err)
			}
			return
		}
		if len(got) > bot.MaxEmailLen {
			t.Fatalf("accepted %q of %d bytes", got, len(got))
		}
		if !utf8.ValidString(got) || strings.IndexByte(got, 0) >= 0 {
			t.Fatalf("accepted %q, which PostgreSQL cannot store (invalid UTF-8 or a NUL byte)", got)
		}
		if got != strings.ToLower(got) {
			t.Fatalf("accepted %q, not lower-case", got)
		}
		if a, err := mail.ParseAddress(got); err != nil || a.Address != got {
			t.Fatalf("stored form %q does not parse back: %v", got, err)
		}
		at := strings.LastIndexByte(got, '@')
		if at < 1 {
			t.Fatalf("accepted %q without a local part", got)
		}
		local, domain := got[:at], got[at+1:]
		if len(local) > 64 {
			t.Fatalf("accepted %q with a local part of %d bytes", got, len(local))
		}
		labels := strings.Split(domain, ".")
		if len(labels) < 2 {
			t.Fatalf("accepted %q without a dot in the domain", got)
		}
		for _, l := range labels {
			if l == "" || len(l) > 63 || strings.HasPrefix(l, "-") || strings.HasSuffix(l, "-") ||
				strings.Trim(l, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
				t.Fatalf("accepted %q with domain label %q", got, l)
			}
		}
		if again, err := bot.ValidateEmail(got); again != got || err != nil {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", in, got, again, err)
		}
		// The Unicode spelling of the domain is the same student.
		if u, err := idna.Lookup.ToUnicode(domain); err == nil && u != domain {
			if same, err := bot.ValidateEmail(local + "@" + u); err == nil && same != got {
				t.Fatalf("%q and its Unicode form %q stored differently: %q", got, local+"@"+u, same)
			}
		}
	})
}

func FuzzValidateQuestion(f *testing.F) {
	for _, s := range []string{
		"When is the first assignment due?", "  ", "\x00", "Why\x00?", "\xff", "\xed\xa0\x80",
		strings.Repeat("é", bot.MaxQuestionLen+1),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := bot.ValidateQuestion(in)
		if err != nil {
			var ue *bot.UserError
			if got != "" || !errors.As(err, &ue) || ue.Msg == "" {
				t.Fatalf("ValidateQuestion(%q) = %q, %v; want \"\" and a *UserError", in, got, err)
			}
			return
		}
		if !utf8.ValidString(got) || strings.IndexByte(got, 0) >= 0 {
			t.Fatalf("accepted %q, which PostgreSQL cannot store (invalid UTF-8 or a NUL byte)", got)
		}
		if n := utf8.RuneCountInString(got); got == "" || n > bot.MaxQuestionLen || strings.TrimSpace(got) != got {
			t.Fatalf("accepted %q: empty, untrimmed or over %d characters", got, bot.MaxQuestionLen)
		}
		if again, err := bot.ValidateQuestion(got); again != got || err != nil {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", in, got, again, err)
		}
	})
}
