package loadtest

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "probe-child" {
		// This test binary is the child TestChildRunsPrivateOnAPortItIsGiven starts.
		if err := probeChild(); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// where is what the probe child reports about itself.
type where struct {
	Dir     string   `json:"dir"`
	Entries []string `json:"entries"`
	Mode    uint32   `json:"mode"`
	Env     []string `json:"env"`
	Addr    string   `json:"addr"`
}

// probeChild stands in for classbot serve: it listens on HTTP_ADDR,
// answers GET /healthz, and GET /where with its working directory and
// environment, until SIGTERM.
func probeChild() error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", os.Getenv("HTTP_ADDR"))
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /where", func(w http.ResponseWriter, _ *http.Request) {
		var wh where
		wh.Dir, _ = os.Getwd()
		if st, err := os.Stat(wh.Dir); err == nil {
			wh.Mode = uint32(st.Mode().Perm())
		}
		entries, _ := os.ReadDir(".")
		for _, e := range entries {
			wh.Entries = append(wh.Entries, e.Name())
		}
		wh.Env = os.Environ()
		wh.Addr = ln.Addr().String()
		_ = json.NewEncoder(w).Encode(wh)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: time.Second}
	go func() { <-ctx.Done(); _ = srv.Close() }()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}

// The child listens where the parent told it (no output to scrape), in a
// fresh private directory of its own (not the temp directory, where a .env
// may lie), with only the run's environment, and its directory goes with it.
func TestChildRunsPrivateOnAPortItIsGiven(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // os.TempDir
	if err := os.WriteFile(filepath.Join(tmp, ".env"), []byte("DATABASE_URL=postgres://nowhere/\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	c := Child{Path: exe, Args: []string{"probe-child"}, Name: "probe", Store: "none", StartTimeout: 30 * time.Second}
	bot, err := c.Start(t.Context(), map[string]string{"HTTP_ADDR": "127.0.0.1:0", "HANDLER_MODE": "async"})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = bot.Stop(context.Background())
		}
	})
	if bot.PID <= 0 || bot.PID == os.Getpid() || bot.Store != "none" {
		t.Errorf("bot %+v: want the child's pid and the store given", bot)
	}

	resp, err := http.Get(bot.URL + "/where")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var wh where
	if err := json.NewDecoder(resp.Body).Decode(&wh); err != nil {
		t.Fatal(err)
	}
	if "http://"+wh.Addr != bot.URL || strings.HasSuffix(wh.Addr, ":0") {
		t.Errorf("the child listens on %s, Bot.URL is %s: want the port picked for it", wh.Addr, bot.URL)
	}
	if filepath.Clean(wh.Dir) == filepath.Clean(tmp) || !strings.HasPrefix(wh.Dir, tmp+string(filepath.Separator)) {
		t.Errorf("the child runs in %s: want a directory of its own under %s", wh.Dir, tmp)
	}
	if len(wh.Entries) != 0 || wh.Mode&0o077 != 0 {
		t.Errorf("the child's directory holds %v with mode %o: want empty and private", wh.Entries, wh.Mode)
	}
	var names []string
	for _, kv := range wh.Env {
		k, _, _ := strings.Cut(kv, "=")
		names = append(names, k)
	}
	slices.Sort(names)
	if want := []string{"HANDLER_MODE", "HOME", "HTTP_ADDR", "PATH"}; !slices.Equal(names, want) {
		t.Errorf("the child's environment has %v, want only %v", names, want)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	stopped = true
	if err := bot.Stop(ctx); err != nil {
		t.Errorf("stop: %v", err)
	}
	if _, err := os.Stat(wh.Dir); !os.IsNotExist(err) {
		t.Errorf("the child's directory %s is still there after Stop (%v)", wh.Dir, err)
	}
}

func TestChildThatCannotStartSaysWhy(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir()) // its log
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// Without "probe-child" the test binary runs the tests that match
	// nothing and exits: a bot that stops before it listens.
	c := Child{Path: exe, Args: []string{"-test.run=^$"}, StartTimeout: 30 * time.Second}
	if _, err := c.Start(t.Context(), map[string]string{}); err == nil || !strings.Contains(err.Error(), "stopped before it listened") {
		t.Fatalf("err = %v, want the child's early exit reported", err)
	}
}
