package bot_test

import (
	"strings"
	"testing"

	"github.com/classbot/classbot/bot"
)

func TestValidateEmail(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"ada@example.com", "ada@example.com", true},
		{"Ada.Lovelace@Example.COM", "ada.lovelace@example.com", true},
		{"<mailto:ada@example.com|ada@example.com>", "ada@example.com", true},
		{"zed@", "", false},
		{"zed-at-home", "", false},
		{"Zed <zed@example.org>", "", false},
		{"zed@example.org, bob@example.org", "", false},
		{strings.Repeat("a", 243) + "@example.com", "", false},
	}
	for _, tt := range tests {
		got, err := bot.ValidateEmail(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ValidateEmail(%q) = %q, %v; want %q, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
		if err != nil && strings.Contains(err.Error(), tt.in) && tt.in != "" {
			t.Errorf("error %q echoes the email", err)
		}
	}
}

func TestValidateName(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"  Ada Lovelace ", "Ada Lovelace", true},
		{"Zoë Ñúñez-O'Brien", "Zoë Ñúñez-O'Brien", true},
		{strings.Repeat("é", 100), strings.Repeat("é", 100), true},
		{strings.Repeat("é", 101), "", false},
		{"", "", false},
		{"Ada\nLovelace", "", false},
		{"Ada\u200bL", "", false}, // zero-width space is not printable
		{"\xff\xfe", "", false},
	}
	for _, tt := range tests {
		got, err := bot.ValidateName(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ValidateName(%q) = %q, %v; want %q, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
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
