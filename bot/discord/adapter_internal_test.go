package discord

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/classbot/classbot/bot"
)

func TestDiscordAPIPath(t *testing.T) {
	for in, want := range map[string]string{
		"/api/v9/webhooks/1/t/messages/@original": "webhooks/1/t/messages/@original",
		"/api/v10/gateway":                        "gateway",
		"/api/gateway":                            "gateway",
		"/api/voice/x":                            "voice/x",
		"/other":                                  "other",
	} {
		if got := apiPath(in); got != want {
			t.Errorf("apiPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestDiscordRewriterUsesAPIURL checks that discordgo's discord.com calls
// land on APIURL, prefix included, with no bot token.
func TestDiscordRewriterUsesAPIURL(t *testing.T) {
	got := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Method + " " + r.URL.Path + " auth=" + r.Header.Get("Authorization")
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	a, err := New(Config{APIURL: srv.URL + "/proxy/api/v10"})
	if err != nil {
		t.Fatal(err)
	}
	w := webhook{a: a, appID: "1", token: "secret-token"}
	if err := w.edit(t.Context(), "hi", nil, nil); err != nil {
		t.Fatal(err)
	}
	if g := <-got; g != "PATCH /proxy/api/v10/webhooks/1/secret-token/messages/@original auth=" {
		t.Fatalf("request %q", g)
	}
}

func TestDiscordErrorsHideTheToken(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close() // every call fails with a *url.Error naming the URL
	a, err := New(Config{APIURL: srv.URL + "/api/v10/"})
	if err != nil {
		t.Fatal(err)
	}
	w := webhook{a: a, appID: "1", token: "secret-token"}
	err = w.FollowUp(context.Background(), botReply("hello"))
	if err == nil {
		t.Fatal("FollowUp to a closed server succeeded")
	}
	if strings.Contains(err.Error(), "secret-token") {
		t.Fatalf("error names the token: %v", err)
	}
	var ue *url.Error // the chain under the redacted message is intact
	if !errors.As(err, &ue) {
		t.Fatalf("error %v lost its chain", err)
	}
}

func botReply(s string) bot.Reply { return bot.Reply{Text: s} }
