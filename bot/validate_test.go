package bot_test

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"strings"
	"testing"

	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/store"
)

func TestValidateEmail(t *testing.T) {
	tests := []struct {
		name, in, want string // want "" means refused
	}{
		{"plain", "ada@example.com", "ada@example.com"},
		{"lower-cased", "Ada.Lovelace@Example.COM", "ada.lovelace@example.com"},
		{"Slack mailto link", "<mailto:ada@example.com|ada@example.com>", "ada@example.com"},
		{"surrounding spaces", "  ada@example.com ", "ada@example.com"},
		{"subdomain", "ada@cs.uni.example.ac.uk", "ada@cs.uni.example.ac.uk"},
		{"plus tag and hyphen", "ada+class@my-school.example", "ada+class@my-school.example"},
		{"local part of 64", strings.Repeat("a", 64) + "@example.com", strings.Repeat("a", 64) + "@example.com"},
		{"254 in all", strings.Repeat("a", 64) + "@" + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 57) + ".com",
			strings.Repeat("a", 64) + "@" + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 57) + ".com"},
		{"IDNA domain stored as punycode", "ada@bücher.de", "ada@xn--bcher-kva.de"},
		{"punycode domain", "ada@xn--bcher-kva.de", "ada@xn--bcher-kva.de"},
		{"upper-case punycode", "ADA@XN--BCHER-KVA.DE", "ada@xn--bcher-kva.de"},
		{"upper-case IDNA domain", "ada@BÜCHER.de", "ada@xn--bcher-kva.de"},
		{"ideographic full stop", "ada@example\u3002com", "ada@example.com"},
		{"fullwidth domain", "ada@\uff25xample.com", "ada@example.com"},
		{"IDNA drops a zero-width space in the domain", "ada@exa\u200bmple.com", "ada@example.com"},

		{"empty", "", ""},
		{"no domain", "zed@", ""},
		{"no at sign", "zed-at-home", ""},
		{"display name", "Zed <zed@example.org>", ""},
		{"two addresses", "zed@example.org, bob@example.org", ""},
		{"comment", "zed@example.org (Zed)", ""},
		{"quoted local part", `"zed"@example.org`, ""},
		{"over 254", strings.Repeat("a", 243) + "@example.com", ""},
		{"no dot in domain", "a@b", ""},
		{"localhost", "ada@localhost", ""},
		{"IDNA domain without a dot", "ada@bücher", ""},
		{"IPv4 literal", "a@[127.0.0.1]", ""},
		{"IPv6 literal", "a@[IPv6:::1]", ""},
		{"bare IPv4 address", "a@127.0.0.1", ""},
		{"local part of 65", strings.Repeat("a", 65) + "@example.com", ""},
		{"label starts with hyphen", "ada@-example.com", ""},
		{"label ends with hyphen", "ada@example-.com", ""},
		{"underscore in domain", "ada@ex_ample.com", ""},
		{"label of 64", "ada@" + strings.Repeat("b", 64) + ".com", ""},
		{"bad punycode", "ada@xn--zz.com", ""},
		{"bidi override in local part", "ada\u202egro@example.com", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := bot.ValidateEmail(tt.in)
			if got != tt.want || (err == nil) != (tt.want != "") {
				t.Fatalf("ValidateEmail(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
			if err == nil {
				return
			}
			var ue *bot.UserError
			if !errors.As(err, &ue) {
				t.Errorf("error %v is not a *UserError", err)
			}
			// The examples in the messages use "ada", so a local part
			// "ada" proves nothing.
			in := strings.TrimSpace(tt.in)
			local, _, _ := strings.Cut(in, "@")
			if (len(in) >= 3 && strings.Contains(err.Error(), in)) || (len(local) >= 3 && local != "ada" && strings.Contains(err.Error(), local)) {
				t.Errorf("error %q echoes the email", err)
			}
		})
	}
}

// TestValidateEmailSameStudent: the two spellings of one address (Unicode and
// punycode domain) must be stored as one, or one student registers twice.
func TestValidateEmailSameStudent(t *testing.T) {
	for _, pair := range [][2]string{
		{"ada@bücher.de", "ada@xn--bcher-kva.de"},
		{"Ada@Bücher.DE", "ada@XN--BCHER-KVA.de"},
		{"li@例え.テスト", "li@xn--r8jz45g.xn--zckzah"},
	} {
		t.Run(pair[0], func(t *testing.T) {
			a, errA := bot.ValidateEmail(pair[0])
			b, errB := bot.ValidateEmail(pair[1])
			if errA != nil || errB != nil || a != b {
				t.Errorf("%q -> %q, %v; %q -> %q, %v; want one address", pair[0], a, errA, pair[1], b, errB)
			}
		})
	}
}

func TestValidateName(t *testing.T) {
	marks := func(n int) string { return strings.Repeat("\u0301", n) }
	tests := []struct {
		name, in, want string // want "" means refused
	}{
		{"trimmed", "  Ada Lovelace ", "Ada Lovelace"},
		{"accents and apostrophe", "Zoë Ñúñez-O'Brien", "Zoë Ñúñez-O'Brien"},
		{"100 characters", strings.Repeat("é", 100), strings.Repeat("é", 100)},
		{"Persian name with ZWNJ", "علی مهدی\u200cزاده", "علی مهدی\u200cزاده"},
		{"emoji ZWJ sequence", "Ada 👩\u200d💻", "Ada 👩\u200d💻"},
		{"family emoji", "Bo 👨\u200d👩\u200d👧", "Bo 👨\u200d👩\u200d👧"},
		{"ZWJ after a variation selector", "Bo ❤\ufe0f\u200d🔥", "Bo ❤\ufe0f\u200d🔥"},
		{"Devanagari ZWNJ after virama", "क्\u200cष", "क्\u200cष"},
		{"soft hyphen stripped", "Ada Love\u00adlace", "Ada Lovelace"},
		{"no-break space", "Ada\u00a0Lovelace", "Ada Lovelace"},
		{"tab", "Ada\tLovelace", "Ada Lovelace"},
		{"narrow no-break space", "Ada\u202fLovelace", "Ada Lovelace"},
		{"ideographic space", "山田\u3000花子", "山田 花子"},
		{"space runs collapse", "Ada \t\u00a0\u2003 Lovelace", "Ada Lovelace"},
		{"soft hyphen between spaces", "Ada \u00ad Lovelace", "Ada Lovelace"},
		{"leading no-break space", "\u00a0\u00a0Ada", "Ada"},
		{"length counted after normalisation", strings.Repeat("é", 50) + strings.Repeat("\u00a0", 30) + strings.Repeat("\u00ad", 30) + strings.Repeat("é", 49),
			strings.Repeat("é", 50) + " " + strings.Repeat("é", 49)},
		{"four combining marks", "Z" + marks(4), "Z" + marks(4)},
		{"decomposed Vietnamese", "Nguye\u0302\u0303n", "Nguye\u0302\u0303n"},
		{"Hangul filler beside letters", "Ada\u3164", "Ada\u3164"},
		{"digit only", "42", "42"},

		{"empty", "", ""},
		{"only spaces", " \t\u00a0 ", ""},
		{"only soft hyphens", "\u00ad\u00ad", ""},
		{"101 characters", strings.Repeat("é", 101), ""},
		{"101 after normalisation", strings.Repeat("é", 50) + "\u00a0" + strings.Repeat("é", 50), ""},
		{"newline", "Ada\nLovelace", ""},
		{"invalid UTF-8", "\xff\xfe", ""},
		{"email inside the name", "Ada a@b.com", ""},
		{"fullwidth at sign", "Ada a\uff20b.com", ""},
		{"small at sign", "Ada a\ufe6bb.com", ""},
		{"Slack mailto link in name", "Ada <mailto:a@b.com|a@b.com>", ""},
		{"only Hangul filler", "\u3164", ""},
		{"only Hangul fillers", "\u3164\u3164 \uffa0 \u115f\u1160", ""},
		{"only braille blank", "\u2800\u2800", ""},
		{"Z with 99 combining marks", "Z" + marks(99), ""},
		{"five combining marks", "Z" + marks(5), ""},
		{"marks rejoined after soft hyphen", "Z" + marks(3) + "\u00ad" + marks(3), ""},
		{"marks across a joiner", "Z" + marks(3) + "\u200d" + marks(3), ""},
		{"only a joiner", "\u200d", ""},
		{"joiner at the start", "\u200cAda", ""},
		{"joiner at the end", "Ada\u200d", ""},
		{"joiner beside a space", "Ada \u200cLovelace", ""},
		{"two joiners", "Ada\u200d\u200dLovelace", ""},
		{"only punctuation", "-- .", ""},
		{"tag characters", "Ada\U000E0041\U000E0042", ""},
		{"private use", "Ada\ue000", ""},
		{"Mongolian vowel separator", "Ada\u180eLovelace", ""},
	}
	for _, r := range []rune{'\u061c', '\u200e', '\u200f', '\u202a', '\u202b', '\u202c', '\u202d', '\u202e', '\u2066', '\u2067', '\u2068', '\u2069'} {
		tests = append(tests, struct{ name, in, want string }{fmt.Sprintf("bidi control U+%04X", r), "Ada" + string(r) + "Lovelace", ""})
	}
	for _, r := range []rune{'\u200b', '\ufeff', '\u2060'} {
		tests = append(tests, struct{ name, in, want string }{fmt.Sprintf("zero-width space U+%04X", r), "Ada" + string(r) + "Lovelace", ""})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := bot.ValidateName(tt.in)
			if got != tt.want || (err == nil) != (tt.want != "") {
				t.Fatalf("ValidateName(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
			var ue *bot.UserError
			if err != nil && !errors.As(err, &ue) {
				t.Errorf("error %v is not a *UserError", err)
			}
		})
	}
}

// TestRegisterEmailInName: "/register Ada a@b.com c@d.com" must not store a
// name with an email in it (the name goes to the model; the email must not).
func TestRegisterEmailInName(t *testing.T) {
	name, email, err := bot.ParseRegisterText("Ada a@b.com c@d.com")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bot.ValidateEmail(email); err != nil {
		t.Fatalf("email %q: %v", email, err)
	}
	_, err = bot.ValidateName(name)
	if err == nil {
		t.Fatalf("name %q with an email in it was accepted", name)
	}
	if strings.Contains(err.Error(), "a@b.com") {
		t.Errorf("error %q echoes the email", err)
	}
}

// TestLimitsComeFromStore: the name and email limits have one source, the
// store's constants (the schema's CHECK constraints). The values alone would
// agree today; this checks that bot/validate.go refers to them.
func TestLimitsComeFromStore(t *testing.T) {
	if bot.MaxNameLen != store.MaxNameChars || bot.MaxEmailLen != store.MaxEmailBytes {
		t.Fatalf("bot limits %d/%d, store limits %d/%d", bot.MaxNameLen, bot.MaxEmailLen, store.MaxNameChars, store.MaxEmailBytes)
	}
	f, err := parser.ParseFile(token.NewFileSet(), "validate.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"MaxNameLen": "MaxNameChars", "MaxEmailLen": "MaxEmailBytes"}
	found := 0
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok {
			return true
		}
		for i, id := range vs.Names {
			if sel, ok := want[id.Name]; ok && i < len(vs.Values) {
				found++
				se, ok := vs.Values[i].(*ast.SelectorExpr)
				if x, isIdent := se.X.(*ast.Ident); !ok || !isIdent || x.Name != "store" || se.Sel.Name != sel {
					t.Errorf("%s is not defined as store.%s", id.Name, sel)
				}
			}
		}
		return true
	})
	if found != len(want) {
		t.Errorf("found %d of the %d limits in validate.go", found, len(want))
	}
}

func TestParseRegisterText(t *testing.T) {
	name, email, err := bot.ParseRegisterText("  Ada   King Lovelace  ada@example.com ")
	if err != nil || name != "Ada King Lovelace" || email != "ada@example.com" {
		t.Errorf("got %q %q %v", name, email, err)
	}
	if _, _, err := bot.ParseRegisterText("ada@example.com"); err == nil {
		t.Error("a lone email was accepted without a name")
	}
}

// unstorable is text PostgreSQL refuses in a text column, with the words
// the student's answer must hold.
var unstorable = []struct{ name, in, want string }{
	{"NUL alone", "\x00", "NUL byte"},
	{"NUL inside", "Ada\x00Lovelace", "NUL byte"},
	{"NUL at the end", "Ada Lovelace\x00", "NUL byte"},
	{"NUL after spaces", "  \x00  ", "NUL byte"},
	{"invalid UTF-8", "Ada \xff\xfe", "UTF-8"},
	{"UTF-16 surrogate encoded as UTF-8", "Ada \xed\xa0\x80", "UTF-8"},
}

// TestUnstorableTextIsRefused: every field a student types refuses a NUL
// byte and invalid UTF-8 with an answer that says so, before anything
// reaches the database.
func TestUnstorableTextIsRefused(t *testing.T) {
	fields := []struct {
		field    string // named in the answer
		validate func(string) error
	}{
		{"name", func(s string) error { _, err := bot.ValidateName(s); return err }},
		{"email address", func(s string) error { _, err := bot.ValidateEmail(s); return err }},
		{"email address", func(s string) error { _, err := bot.ValidateEmail("ada" + s + "@example.com"); return err }},
		{"question", func(s string) error { _, err := bot.ValidateQuestion(s); return err }},
		{"question", func(s string) error { _, err := bot.ValidateQuestion("When is it due? " + s); return err }},
		{"message", func(s string) error { _, _, err := bot.ParseRegisterText(s + " ada@example.com"); return err }},
	}
	for _, f := range fields {
		for _, u := range unstorable {
			t.Run(f.field+"/"+u.name, func(t *testing.T) {
				err := f.validate(u.in)
				var ue *bot.UserError
				if !errors.As(err, &ue) {
					t.Fatalf("err = %v, want a *UserError", err)
				}
				if !strings.Contains(ue.Msg, u.want) || !strings.Contains(ue.Msg, "Your "+f.field+" ") {
					t.Errorf("answer %q, want one that names the %s and says %q", ue.Msg, f.field, u.want)
				}
			})
		}
	}
}

// TestUnstorableCommandsAreAnsweredPlainly: a command carrying a NUL byte
// gets the plain answer, on every path a student's text arrives (Slack's
// free text, Discord's options), and neither the store nor the model sees
// it.
func TestUnstorableCommandsAreAnsweredPlainly(t *testing.T) {
	withOptions := func(c bot.Command, opts map[string]string) bot.Command {
		c.Text, c.Options = "", opts
		return c
	}
	tests := []struct {
		name string
		cmd  bot.Command
		want string
	}{
		{"/ask text", askCmd("When is\x00 the exam?"), "Your question contains a character classbot can't store (a NUL byte); please retype it."},
		{"/ask option", withOptions(askCmd(""), map[string]string{"question": "\x00"}), "Your question contains a character classbot can't store (a NUL byte)"},
		{"/register text, name", registerCmd("Ada\x00 ada@example.com"), "Your message contains a character classbot can't store (a NUL byte)"},
		{"/register option name", withOptions(registerCmd(""), map[string]string{"name": "Ada\x00", "email": "ada@example.com"}), "Your name contains a character classbot can't store (a NUL byte)"},
		{"/register option email", withOptions(registerCmd(""), map[string]string{"name": "Ada", "email": "ada@example.com\x00"}), "Your email address contains a character classbot can't store (a NUL byte)"},
		{"/ask invalid UTF-8", askCmd("When is \xff the exam?"), "Your question contains characters classbot can't read (it isn't valid UTF-8 text)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := setup(t, bot.Config{Mode: bot.ModeSync})
			r := newRecorder()
			if err := f.disp.Dispatch(t.Context(), tt.cmd, r); err != nil {
				t.Fatal(err)
			}
			if got := r.answer(t); !strings.Contains(got.Text, tt.want) || !got.Ephemeral {
				t.Errorf("answer %q (ephemeral %v), want one containing %q, ephemeral", got.Text, got.Ephemeral, tt.want)
			}
			if n, w := f.agent.calls.Load(), f.store.writes.Load(); n != 0 || w != 0 {
				t.Errorf("%d model calls and %d registration writes, want none", n, w)
			}
		})
	}
}
