package discord_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/bot/discord"
	"github.com/classbot/classbot/bot/discord/discordtest"
	"github.com/classbot/classbot/store"
)

// benchHandler is the adapter's HTTP handler with a dispatcher over the
// small in-memory store and an agent that answers at once.
func benchHandler(b *testing.B, mode bot.Mode) (http.Handler, ed25519.PrivateKey) {
	b.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	disp := bot.NewDispatcher(b.Context(), bot.New(store.NewMemory(), newAgent(true), bot.Options{Logger: log}), bot.Config{Mode: mode, Logger: log})
	b.Cleanup(func() { _ = disp.Shutdown(context.Background()) })
	ad, err := discord.New(discord.Config{AppID: appID, PublicKey: pub, Dispatcher: disp, Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	return ad.Handler(), priv
}

// BenchmarkHTTPVerifyParse is what every HTTP interaction costs before any
// work: read the body, check the timestamp, verify the Ed25519 signature
// over it, and parse it. The body is the recorded /register interaction
// (about 1.5 KB) turned into a PING, so the handler stops right after the
// parse and answers {"type":1}.
func BenchmarkHTTPVerifyParse(b *testing.B) {
	h, key := benchHandler(b, bot.ModeAsync)
	raw, err := os.ReadFile(payload)
	if err != nil {
		b.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		b.Fatal(err)
	}
	m["type"] = 1
	body, _ := json.Marshal(m)
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	sig := discordtest.Sign(key, ts, body)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/discord/interactions", bytes.NewReader(body))
		req.Header.Set("X-Signature-Ed25519", sig)
		req.Header.Set("X-Signature-Timestamp", ts)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}

// BenchmarkHTTPRegisterSync is one whole /register through the handler in
// sync mode (verify, parse, ledger, store, instant agent, the type 4
// answer), with the in-memory store: the adapter's and the bot's CPU cost
// without the network.
func BenchmarkHTTPRegisterSync(b *testing.B) {
	h, key := benchHandler(b, bot.ModeSync)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		n++
		b.StopTimer() // building and signing the request is Discord's work, not ours
		id := strconv.Itoa(1200000000000000000 + n)
		body, err := discordtest.Interaction(payload, id, "token-"+id, "register", map[string]string{"name": "Ada Lovelace", "email": "ada@example.com"})
		if err != nil {
			b.Fatal(err)
		}
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		req := httptest.NewRequest(http.MethodPost, "/discord/interactions", bytes.NewReader(body))
		req.Header.Set("X-Signature-Ed25519", discordtest.Sign(key, ts, body))
		req.Header.Set("X-Signature-Timestamp", ts)
		b.StartTimer()
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}
