package bot

import (
	"fmt"
	"net/mail"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on what students type.
const (
	MaxNameLen     = 100  // characters in a name
	MaxEmailLen    = 254  // characters in an email address (RFC 5321)
	MaxQuestionLen = 2000 // characters in an /ask question
)

// UserError is a problem with what the student typed. Its message is written
// for the student and is safe to show them; it never echoes their email.
type UserError struct{ Msg string }

func (e *UserError) Error() string { return e.Msg }

func userErrorf(format string, args ...any) *UserError {
	return &UserError{Msg: fmt.Sprintf(format, args...)}
}

// ValidateName trims a display name and checks it: 1 to 100 printable characters.
func ValidateName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return "", userErrorf("Please tell me your name, like this: `/register Ada Lovelace ada@example.com`.")
	}
	if !utf8.ValidString(name) {
		return "", userErrorf("Your name has characters I can't read. Please type it again.")
	}
	if n := utf8.RuneCountInString(name); n > MaxNameLen {
		return "", userErrorf("Your name is %d characters long; please use at most %d.", n, MaxNameLen)
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return "", userErrorf("Your name can only have printable characters (letters, spaces, punctuation).")
		}
	}
	return name, nil
}

// slackMailto matches Slack's auto-formatted email link, <mailto:a@b.c|a@b.c>.
var slackMailto = regexp.MustCompile(`^<mailto:([^|>]+)(?:\|[^>]*)?>$`)

// ValidateEmail checks an email address with net/mail (a bare address, no
// display name, at most 254 characters) and returns it lower-cased.
func ValidateEmail(email string) (string, error) {
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
	if err != nil || addr.Name != "" || addr.Address != email || !strings.Contains(addr.Address, "@") {
		return "", userErrorf("That doesn't look like an email address. Please use one like `ada@example.com`.")
	}
	return strings.ToLower(addr.Address), nil
}

// ParseRegisterText splits "/register" free text: the email is the last word,
// the name is the rest.
func ParseRegisterText(text string) (name, email string, err error) {
	fields := strings.Fields(text)
	if len(fields) < 2 {
		return "", "", userErrorf("To register, type your name and then your email: `/register Ada Lovelace ada@example.com`.")
	}
	return strings.Join(fields[:len(fields)-1], " "), fields[len(fields)-1], nil
}

// ValidateQuestion trims an /ask question and checks its length.
func ValidateQuestion(q string) (string, error) {
	q = strings.TrimSpace(q)
	if q == "" {
		return "", userErrorf("What would you like to know? Type your question after the command: `/ask When is the first assignment due?`")
	}
	if !utf8.ValidString(q) {
		return "", userErrorf("Your question has characters I can't read. Please type it again.")
	}
	if n := utf8.RuneCountInString(q); n > MaxQuestionLen {
		return "", userErrorf("Your question is %d characters long; please keep it under %d.", n, MaxQuestionLen)
	}
	return q, nil
}
