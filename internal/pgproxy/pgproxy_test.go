package pgproxy_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/classbot/classbot/internal/pgproxy"
)

// echoServer echoes every connection until the test ends.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// setup starts an echo server and a proxy in front of it.
func setup(t *testing.T, opts pgproxy.Options) *pgproxy.Proxy {
	t.Helper()
	p, err := pgproxy.Start(t.Context(), echoServer(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip writes msg and reads it back, with a deadline.
func roundTrip(c net.Conn, msg string, within time.Duration) (time.Duration, error) {
	start := time.Now()
	_ = c.SetDeadline(start.Add(within))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, msg); err != nil {
		return 0, err
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		return 0, err
	}
	if string(buf) != msg {
		return 0, errors.New("echo mismatch: " + string(buf))
	}
	return time.Since(start), nil
}

func TestProxyForwards(t *testing.T) {
	p := setup(t, pgproxy.Options{})
	c := dial(t, p.Addr())
	if _, err := roundTrip(c, "hello", 2*time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestProxyAddsLatencyEachWay(t *testing.T) {
	const lat = 50 * time.Millisecond
	p := setup(t, pgproxy.Options{Latency: lat})
	c := dial(t, p.Addr())
	d, err := roundTrip(c, "ping", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if d < 2*lat {
		t.Errorf("round trip took %s, want at least %s (latency each way)", d, 2*lat)
	}
}

func TestProxyLatencyKeepsOrderAndDoesNotSerialize(t *testing.T) {
	// 200 writes in a row: each waits the latency, but in a queue, not one
	// after another, so the whole stream takes about one round trip.
	const lat = 50 * time.Millisecond
	p := setup(t, pgproxy.Options{Latency: lat})
	c := dial(t, p.Addr())
	const n = 200
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		for i := range n {
			if _, err := c.Write([]byte{byte(i)}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	for i := range n {
		b, err := r.ReadByte()
		if err != nil {
			t.Fatalf("byte %d: %v", i, err)
		}
		if b != byte(i) {
			t.Fatalf("byte %d is %d: order not kept", i, b)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Serialized, 200 chunks would take at least 200 × 50 ms = 10 s.
	if el := time.Since(start); el < 2*lat || el > 40*lat {
		t.Errorf("%d writes echoed in %s, want about %s (two latencies, not one per chunk)", n, el, 2*lat)
	}
}

func TestProxyCutRefusesUntilRestore(t *testing.T) {
	p := setup(t, pgproxy.Options{})
	c := dial(t, p.Addr())
	if _, err := roundTrip(c, "before", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	p.Cut()
	// The connection it held is closed.
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("a connection held across Cut still reads")
	} else if errors.Is(err, syscall.ETIMEDOUT) || isTimeout(err) {
		t.Error("a connection held across Cut stays open; want it closed")
	}
	// New connections are refused.
	if _, err := net.DialTimeout("tcp", p.Addr(), time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial while cut: %v, want connection refused", err)
	}
	if err := p.Restore(); err != nil {
		t.Fatal(err)
	}
	c2 := dial(t, p.Addr())
	if _, err := roundTrip(c2, "after", 2*time.Second); err != nil {
		t.Fatalf("after Restore: %v", err)
	}
}

func TestProxyBlackHoleStallsAndRestoreResumes(t *testing.T) {
	p := setup(t, pgproxy.Options{})
	held := dial(t, p.Addr())
	if _, err := roundTrip(held, "before", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	p.BlackHole()

	// An open connection passes nothing, and is not closed.
	if _, err := roundTrip(held, "stalled", 300*time.Millisecond); !isTimeout(err) {
		t.Errorf("held connection in a black hole: %v, want a timeout", err)
	}
	// A new connection is accepted and passes nothing.
	fresh := dial(t, p.Addr())
	if _, err := roundTrip(fresh, "new", 300*time.Millisecond); !isTimeout(err) {
		t.Errorf("new connection in a black hole: %v, want a timeout", err)
	}
	if n := p.Connections(); n != 2 {
		t.Errorf("%d connections held, want 2 (a black hole closes nothing)", n)
	}

	if err := p.Restore(); err != nil {
		t.Fatal(err)
	}
	// A new connection works again…
	c := dial(t, p.Addr())
	if _, err := roundTrip(c, "resumed", 2*time.Second); err != nil {
		t.Fatalf("new connection after Restore: %v", err)
	}
	// …and the ones held across the black hole get what was held back.
	_ = fresh.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, len("new"))
	if _, err := io.ReadFull(fresh, buf); err != nil || string(buf) != "new" {
		t.Errorf("connection opened in the black hole, after Restore: %q, %v; want the held bytes", buf, err)
	}
}

func TestProxyCloseEndsEverything(t *testing.T) {
	p, err := pgproxy.Start(t.Context(), echoServer(t), pgproxy.Options{Latency: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, p.Addr())
	if _, err := c.Write([]byte("queued for an hour")); err != nil {
		t.Fatal(err)
	}
	p.BlackHole()
	done := make(chan struct{})
	go func() { _ = p.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return: a goroutine does not end")
	}
	if _, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		t.Error("dial after Close succeeded")
	}
	if err := p.Restore(); err == nil {
		t.Error("Restore after Close succeeded")
	}
}

func TestProxyStopsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	p, err := pgproxy.Start(ctx, echoServer(t), pgproxy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, p.Addr())
	if _, err := roundTrip(c, "x", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := net.DialTimeout("tcp", p.Addr(), time.Second); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the proxy still listens after its context ended")
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = p.Close() // waits for its goroutines
}

func TestProxyUnreachableTargetClosesClient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	p, err := pgproxy.Start(t.Context(), addr, pgproxy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	c := dial(t, p.Addr())
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Errorf("read through a proxy whose target is down: %v, want the connection closed", err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// CutAfterFunc forwards the matching chunk, then closes the connection at
// the target's answer, which the client never sees.
func TestProxyCutAfterForwardsThenDropsTheAnswer(t *testing.T) {
	p := setup(t, pgproxy.Options{CutAfterFunc: func(b []byte) bool { return strings.Contains(string(b), "commit") }})
	c := dial(t, p.Addr())
	if _, err := roundTrip(c, "begin", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := roundTrip(c, "commit", 2*time.Second); err == nil || isTimeout(err) {
		t.Fatalf("the answer to the matching chunk: %v, want the connection closed", err)
	}
	// Other connections are not affected.
	if _, err := roundTrip(dial(t, p.Addr()), "again", 2*time.Second); err != nil {
		t.Fatal(err)
	}
}
