package bot

import (
	"fmt"
	"net/mail"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"

	"github.com/classbot/classbot/store"
)

// Limits on what students type. The name and email limits are the store's
// (the schema's CHECK constraints), so the two can never disagree.
const (
	MaxNameLen     = store.MaxNameChars  // characters in a name, counted after normalisation
	MaxEmailLen    = store.MaxEmailBytes // bytes in an email address as stored (RFC 5321: 254)
	MaxQuestionLen = 2000                // characters in an /ask question

	// MaxCombiningMarks is how many combining marks (accents, vowel signs,
	// emoji variation selectors: Unicode category M) may follow one base
	// character. Real names need at most three or four (Vietnamese "ệ"
	// decomposed is two, Devanagari and Tibetan stacks three or four);
	// "Zalgo" text stacks dozens.
	MaxCombiningMarks = 4

	// maxLocalBytes is RFC 5321's limit on the part of an address before the @.
	maxLocalBytes = 64
	// maxDomainBytes and maxLabelBytes are DNS's limits (RFC 1035), checked on
	// the ASCII (punycode) form of the domain.
	maxDomainBytes = 253
	maxLabelBytes  = 63
)

// UserError is a problem with what the student typed. Its message is written
// for the student and is safe to show them; it never echoes their email.
type UserError struct{ Msg string }

func (e *UserError) Error() string { return e.Msg }

func userErrorf(format string, args ...any) *UserError {
	return &UserError{Msg: fmt.Sprintf(format, args...)}
}

// ValidateName normalises a display name and checks it. It is safe for
// concurrent use and does no I/O. On success it returns the name as it should
// be stored; on failure a *UserError for the student. A name that holds a
// NUL byte or is not UTF-8 is refused first (see checkStorable).
//
// Normalisation: tabs and Unicode space separators (category Zs, such as the
// no-break space U+00A0 Discord may send) become a plain space, soft hyphens
// (U+00AD) are dropped, runs of spaces collapse to one and the ends are trimmed.
//
// The normalised name must then:
//   - be 1 to MaxNameLen characters (runes) long;
//   - contain no @ sign (nor its fullwidth and small forms), so that an email
//     address typed into the name never reaches the model;
//   - contain no bidirectional controls (U+061C, U+200E, U+200F,
//     U+202A–U+202E, U+2066–U+2069) and no zero-width spaces (U+200B, U+2060,
//     U+FEFF);
//   - use the zero-width joiner and non-joiner (U+200D, U+200C: Persian names,
//     emoji sequences) only between two other non-space characters;
//   - otherwise hold only printable characters (no control or other format
//     characters, no private-use or unassigned code points);
//   - have at most MaxCombiningMarks combining marks in a row after any one
//     character (joiners neither count nor break the row);
//   - have at least one visible letter or digit; the Hangul fillers (U+115F,
//     U+1160, U+3164, U+FFA0) and the braille blank (U+2800) are allowed but do
//     not count.
func ValidateName(name string) (string, error) {
	if err := checkStorable("name", name); err != nil {
		return "", err
	}
	name = normalizeName(name)
	if name == "" {
		return "", userErrorf("Please tell me your name, like this: `/register Ada Lovelace ada@example.com`.")
	}
	if n := utf8.RuneCountInString(name); n > MaxNameLen {
		return "", userErrorf("Your name is %d characters long; please use at most %d.", n, MaxNameLen)
	}
	var (
		marks   int  // combining marks since the last base character
		visible bool // a visible letter or digit seen
		prev    rune // the previous rune; 0 at the start
	)
	for i, r := range name {
		switch {
		case isAtSign(r):
			return "", userErrorf("Your name can't contain an @. Type your name, then your email once at the end: `/register Ada Lovelace ada@example.com`.")
		case isBidiControl(r) || isZeroWidthSpace(r):
			return "", userErrorf("Your name has invisible characters (like a direction mark or a zero-width space). Please type it again without them.")
		case isJoiner(r):
			next, size := utf8.DecodeRuneInString(name[i+utf8.RuneLen(r):])
			if prev == 0 || prev == ' ' || isJoiner(prev) || size == 0 || next == ' ' || isJoiner(next) {
				return "", userErrorf("Your name has invisible characters (like a direction mark or a zero-width space). Please type it again without them.")
			}
		case !unicode.IsPrint(r):
			return "", userErrorf("Your name can only have printable characters (letters, spaces, punctuation).")
		case unicode.In(r, unicode.M):
			if marks++; marks > MaxCombiningMarks {
				return "", userErrorf("Your name has too many accents stacked on one letter; please use at most %d per letter.", MaxCombiningMarks)
			}
		default:
			marks = 0
			if (unicode.IsLetter(r) || unicode.IsNumber(r)) && !isFiller(r) {
				visible = true
			}
		}
		prev = r
	}
	if !visible {
		return "", userErrorf("Your name needs at least one letter or digit I can see. Please type it again.")
	}
	return name, nil
}

// normalizeName maps tabs and space separators to a plain space, drops soft
// hyphens, collapses runs of spaces and trims the ends. It is idempotent.
func normalizeName(name string) string {
	var b strings.Builder
	b.Grow(len(name))
	space := false // a space is pending: written only before the next non-space
	for _, r := range name {
		switch {
		case r == '\u00AD': // soft hyphen: an invisible hint for line breaking
			continue
		case r == '\t' || unicode.Is(unicode.Zs, r):
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	// What is left at the ends may still be a line break and the like.
	return strings.TrimSpace(b.String())
}

func isAtSign(r rune) bool { return r == '@' || r == '\uFF20' || r == '\uFE6B' }

func isJoiner(r rune) bool { return r == '\u200C' || r == '\u200D' }

func isBidiControl(r rune) bool {
	return r == '\u061C' || r == '\u200E' || r == '\u200F' ||
		('\u202A' <= r && r <= '\u202E') || ('\u2066' <= r && r <= '\u2069')
}

func isZeroWidthSpace(r rune) bool { return r == '\u200B' || r == '\u2060' || r == '\uFEFF' }

// isFiller reports the characters that are printable but show nothing: the
// Hangul fillers and the braille blank.
func isFiller(r rune) bool {
	switch r {
	case '\u115F', '\u1160', '\u3164', '\uFFA0', '\u2800':
		return true
	}
	return false
}

// slackMailto matches Slack's auto-formatted email link, <mailto:a@b.c|a@b.c>.
var slackMailto = regexp.MustCompile(`^<mailto:([^|>]+)(?:\|[^>]*)?>$`)

// ValidateEmail checks an email address and returns it as it should be
// stored. It is safe for concurrent use and does no I/O (no DNS look-up). On
// failure it returns a *UserError whose message never echoes the address.
// An address that holds a NUL byte or is not UTF-8 is refused first.
//
// The address must be a bare address (no display name or comment) that
// net/mail parses, at most MaxEmailLen bytes both as typed and as stored. The
// part before the @ is at most 64 bytes and printable. The domain is a name,
// not a literal like [127.0.0.1]: it is converted with IDNA (UTS #46, the
// lookup profile) to its ASCII form, so ada@bücher.de and ada@xn--bcher-kva.de
// are the same address, and that form must have at least two labels (a dot),
// each 1 to 63 letters, digits or hyphens, not starting or ending with a
// hyphen, and a top-level label that is not all digits. The whole address is
// returned lower-cased, with the domain in its ASCII form.
func ValidateEmail(email string) (string, error) {
	if err := checkStorable("email address", email); err != nil {
		return "", err
	}
	email = strings.TrimSpace(email)
	if m := slackMailto.FindStringSubmatch(email); m != nil {
		email = m[1]
	}
	if email == "" {
		return "", userErrorf("Please add your email address, like this: `/register Ada Lovelace ada@example.com`.")
	}
	if len(email) > MaxEmailLen {
		return "", userErrorf("That email address is too long (at most %d characters).", MaxEmailLen)
	}
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Name != "" || addr.Address != email {
		return "", errNotEmail
	}
	at := strings.LastIndexByte(email, '@')
	if at <= 0 {
		return "", errNotEmail
	}
	local, domain := strings.ToLower(email[:at]), email[at+1:]
	if strings.HasPrefix(domain, "[") {
		return "", userErrorf("Please use an email address with a domain name after the @, like `ada@example.com`, not an IP address.")
	}
	if len(local) > maxLocalBytes {
		return "", userErrorf("The part of your email address before the @ is too long (at most %d characters).", maxLocalBytes)
	}
	for _, r := range local {
		if r == ' ' || !unicode.IsPrint(r) {
			return "", errNotEmail
		}
	}
	ascii, err := idna.Lookup.ToASCII(domain)
	if err != nil {
		return "", errBadDomain
	}
	ascii = strings.ToLower(ascii)
	if !strings.Contains(ascii, ".") {
		return "", userErrorf("Your email address needs a full domain after the @, with a dot in it, like `ada@example.com`.")
	}
	if !isHostname(ascii) {
		return "", errBadDomain
	}
	email = local + "@" + ascii
	if len(email) > MaxEmailLen {
		return "", userErrorf("That email address is too long (at most %d characters).", MaxEmailLen)
	}
	return email, nil
}

var (
	errNotEmail  = userErrorf("That doesn't look like an email address. Please use one like `ada@example.com`.")
	errBadDomain = userErrorf("The part of your email address after the @ doesn't look like a domain name. Please use one like `ada@example.com`.")
)

// isHostname reports whether an ASCII domain is a DNS host name: at most 253
// bytes, dot-separated labels of 1 to 63 letters, digits and hyphens that
// neither start nor end with a hyphen, and a top-level label that is not all
// digits (so 127.0.0.1 is not one).
func isHostname(domain string) bool {
	if len(domain) > maxDomainBytes {
		return false
	}
	labels := strings.Split(domain, ".")
	for _, l := range labels {
		if l == "" || len(l) > maxLabelBytes || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return strings.TrimLeft(labels[len(labels)-1], "0123456789") != ""
}

// ParseRegisterText splits "/register" free text: the email is the last word,
// the name is the rest. Text that holds a NUL byte or is not UTF-8 is
// refused.
func ParseRegisterText(text string) (name, email string, err error) {
	if err := checkStorable("message", text); err != nil {
		return "", "", err
	}
	fields := strings.Fields(text)
	if len(fields) < 2 {
		return "", "", userErrorf("To register, type your name and then your email: `/register Ada Lovelace ada@example.com`.")
	}
	return strings.Join(fields[:len(fields)-1], " "), fields[len(fields)-1], nil
}

// ValidateQuestion trims an /ask question and checks it: not empty, at
// most MaxQuestionLen characters, no NUL byte, valid UTF-8.
func ValidateQuestion(q string) (string, error) {
	if err := checkStorable("question", q); err != nil {
		return "", err
	}
	q = strings.TrimSpace(q)
	if q == "" {
		return "", userErrorf("What would you like to know? Type your question after the command: `/ask When is the first assignment due?`")
	}
	if n := utf8.RuneCountInString(q); n > MaxQuestionLen {
		return "", userErrorf("Your question is %d characters long; please keep it under %d.", n, MaxQuestionLen)
	}
	return q, nil
}

// checkStorable refuses what PostgreSQL cannot keep in a text column: a NUL
// byte, and bytes that are not UTF-8. what names the field in the student's
// answer ("question"); the answer never echoes the text.
func checkStorable(what, s string) error {
	if strings.IndexByte(s, 0) >= 0 {
		return userErrorf("Your %s contains a character classbot can't store (a NUL byte); please retype it.", what)
	}
	if !utf8.ValidString(s) {
		return userErrorf("Your %s contains characters classbot can't read (it isn't valid UTF-8 text); please retype it.", what)
	}
	return nil
}
