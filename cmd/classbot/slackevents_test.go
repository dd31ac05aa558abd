package main

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/classbot/classbot/bot/slack/slacktest"
)

// classbot serve routes POST /slack/events to the Events API handler.
func TestServeRoutesSlackEvents(t *testing.T) {
	s := startSlackServe(t, nil)
	body := []byte(`{"token":"x","challenge":"c-123","type":"url_verification"}`)
	for _, tc := range []struct {
		secret string
		status int
	}{{slackSecret, http.StatusOK}, {"wrong", http.StatusUnauthorized}} {
		req, err := slacktest.NewEventRequest(t.Context(), s.URL+"/slack/events", tc.secret, time.Now(), body, 0)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := (&http.Client{Timeout: slackWait}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || (tc.status == http.StatusOK && string(b) != "c-123") {
			t.Fatalf("secret %q: %d %q, want %d", tc.secret, resp.StatusCode, b, tc.status)
		}
	}
}
