package redact_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/classbot/classbot/internal/redact"
)

// closedAddr returns an address on 127.0.0.1 where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestRedactRerenderedURL(t *testing.T) {
	addr := closedAddr(t)
	tests := []struct {
		name   string
		secret string
		leaks  []string // parts of the secret that must not be logged
	}{
		// net/http renders these URLs differently from how they were given:
		// the scheme lower-cased, a space and a non-ASCII letter %-escaped.
		{"escaped again", "HTTP://" + addr + "/commands/T0A1%2FB2/77123 456/QW1x%7EZ0xré?x=%41",
			[]string{"QW1x", "77123", "T0A1"}},
		{"user and password", "http://hook-user:hunter2@" + addr + "/commands/T0A1B2/77123456/c2VjcmV0",
			[]string{"hook-user", "hunter2", "c2VjcmV0", "77123456"}},
		{"plain", "http://" + addr + "/commands/T0A1B2/77123456/c2VjcmV0", []string{"c2VjcmV0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, tt.secret, strings.NewReader("{}"))
			if err != nil {
				t.Fatal(err)
			}
			_, err = http.DefaultClient.Do(req)
			if err == nil {
				t.Fatal("posting to a closed port succeeded")
			}
			wrapped := fmt.Errorf("response_url message 1 of 2: %w", fmt.Errorf("failed to post webhook: %w", err))
			if !strings.Contains(wrapped.Error(), tt.leaks[0]) {
				t.Fatalf("the unredacted error %q does not show the URL: the test proves nothing", wrapped)
			}
			got := redact.Secret(wrapped, tt.secret, "[response_url]")
			for _, leak := range tt.leaks {
				if strings.Contains(got.Error(), leak) {
					t.Errorf("redacted error %q still shows %q", got, leak)
				}
			}
			if !strings.Contains(got.Error(), "[response_url]") || !strings.Contains(got.Error(), "response_url message 1 of 2") {
				t.Errorf("redacted error %q lost its context", got)
			}
			var ue *url.Error
			if !errors.As(got, &ue) || ue.URL != "[response_url]" {
				t.Errorf("the chain's *url.Error = %v, want its URL replaced", ue)
			}
			var op *net.OpError
			if !errors.As(got, &op) {
				t.Error("the chain lost the *net.OpError")
			}
		})
	}
}

func TestRedactKeepsChainAndPlainSecrets(t *testing.T) {
	if redact.Secret(nil, "s", "[x]") != nil {
		t.Fatal("Secret(nil) is not nil")
	}
	base := fmt.Errorf("edit original response: PATCH /webhooks/1/tok.EN-1/messages/@original: %w", context.Canceled)
	got := redact.Secret(base, "tok.EN-1", "[token]")
	if strings.Contains(got.Error(), "tok.EN-1") || !strings.Contains(got.Error(), "/webhooks/1/[token]/messages") {
		t.Fatalf("Secret = %q", got)
	}
	if !errors.Is(got, context.Canceled) {
		t.Fatal("the chain lost context.Canceled")
	}
	// A *url.Error whose URL holds the token as is keeps the rest of the URL.
	ue := &url.Error{Op: "Patch", URL: "https://discord.example/api/webhooks/1/tok.EN-1/messages/@original", Err: context.DeadlineExceeded}
	got = redact.Secret(errors.Join(errors.New("first"), ue), "tok.EN-1", "[token]")
	if want := `Patch "https://discord.example/api/webhooks/1/[token]/messages/@original"`; !strings.Contains(got.Error(), want) {
		t.Fatalf("Secret = %q, want it to contain %q", got, want)
	}
	// An error without the secret is returned as it is.
	plain := errors.New("connection refused")
	if got := redact.Secret(plain, "tok", "[token]"); got != plain {
		t.Fatalf("Redact changed an error without the secret: %v", got)
	}
}
