package pgproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Options tune a Proxy. The zero value forwards bytes untouched.
type Options struct {
	// Latency is added in each direction: a chunk read from one side is
	// written to the other side Latency after it was read. Default 0.
	Latency time.Duration
	// DialTimeout bounds the connection to the target for each accepted
	// client. Default 5 s.
	DialTimeout time.Duration
	// ListenAddr is where the proxy listens. Default 127.0.0.1:0 (a free
	// port on the loopback interface).
	ListenAddr string
	// CutAfterFunc, if set, is called with each chunk a client sends;
	// when it returns true the chunk is forwarded, and the connection is
	// closed as soon as the target answers, before the answer reaches the
	// client: the target has acted on the chunk (a COMMIT, say) and the
	// client cannot know it. It is called from many goroutines at once.
	CutAfterFunc func(chunk []byte) bool
}

// queueLen bounds the chunks waiting in one direction of one connection: a
// reader that finds the queue full stops reading, so a slow or black-holed
// side pushes back on the other instead of filling memory.
const queueLen = 256

// chunkSize is the largest read forwarded as one chunk.
const chunkSize = 32 << 10

type state int

const (
	stateOpen state = iota
	stateCut
	stateBlackHole
	stateClosed
)

// Proxy forwards TCP connections from Addr to a target. Its methods are
// safe for concurrent use.
type Proxy struct {
	target string
	opts   Options
	addr   string

	ctx    context.Context // cancelled by Close: ends dials and waits
	cancel context.CancelFunc
	stopAF func() bool // the context.AfterFunc that closes the proxy

	mu     sync.Mutex
	state  state
	ln     net.Listener       // nil while cut or closed
	links  map[*link]struct{} // open connections
	resume chan struct{}      // closed when a black hole ends
	accept int                // connections accepted since Start

	wg   sync.WaitGroup // every goroutine the proxy started
	once sync.Once      // Close's work
}

// Start listens on Options.ListenAddr (default 127.0.0.1:0) and forwards
// every connection to target. The proxy runs until Close or until ctx is
// done. It fails if it cannot listen; it does not dial target until a
// client connects.
func Start(ctx context.Context, target string, opts Options) (*Proxy, error) {
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 5 * time.Second
	}
	if opts.ListenAddr == "" {
		opts.ListenAddr = "127.0.0.1:0"
	}
	if opts.Latency < 0 {
		return nil, errors.New("pgproxy: latency must not be negative")
	}
	ln, err := net.Listen("tcp", opts.ListenAddr)
	if err != nil {
		return nil, fmt.Errorf("pgproxy: listen: %w", err)
	}
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p := &Proxy{target: target, opts: opts, addr: ln.Addr().String(), ctx: pctx, cancel: cancel,
		ln: ln, links: map[*link]struct{}{}}
	p.serve(ln)
	p.stopAF = context.AfterFunc(ctx, func() { _ = p.Close() })
	return p, nil
}

// Addr is the address the proxy listens on, host:port. It stays the same
// across Cut and Restore.
func (p *Proxy) Addr() string { return p.addr }

// Latency is the latency added in each direction.
func (p *Proxy) Latency() time.Duration { return p.opts.Latency }

// Connections is the number of client connections the proxy holds now.
func (p *Proxy) Connections() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.links)
}

// Accepted is the number of client connections accepted since Start.
func (p *Proxy) Accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accept
}

// Cut closes every connection and stops listening, so a client that
// connects is refused, until Restore. Cutting a cut proxy does nothing.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state == stateCut || p.state == stateClosed {
		return
	}
	p.shut(stateCut)
}

// shut leaves a black hole (releasing what waits on it), stops listening,
// closes every connection and moves to state to. p.mu is held.
func (p *Proxy) shut(to state) {
	if p.state == stateBlackHole {
		close(p.resume)
	}
	p.state = to
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
	}
	for l := range p.links {
		l.close()
	}
}

// BlackHole keeps every connection open and accepts new ones, but passes
// no byte in either direction until Restore. Bytes already read are held
// and delivered after Restore (each connection holds at most a bounded
// queue; past it, the proxy stops reading from that side).
func (p *Proxy) BlackHole() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state != stateOpen {
		if p.state == stateCut {
			// From a cut straight to a black hole: listen again, pass nothing.
			if err := p.relisten(); err != nil {
				return
			}
			p.state = stateOpen
		} else {
			return
		}
	}
	p.state = stateBlackHole
	p.resume = make(chan struct{})
}

// Restore ends a Cut or a BlackHole: the proxy listens again on the same
// address and forwards bytes. It fails if the proxy is closed or if the
// address was taken by someone else while the proxy was cut.
func (p *Proxy) Restore() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch p.state {
	case stateClosed:
		return errors.New("pgproxy: restore a closed proxy")
	case stateCut:
		if err := p.relisten(); err != nil {
			return err
		}
	case stateBlackHole:
		close(p.resume)
	}
	p.state = stateOpen
	return nil
}

// relisten listens on the proxy's address again. p.mu is held.
func (p *Proxy) relisten() error {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		return fmt.Errorf("pgproxy: listen again on %s: %w", p.addr, err)
	}
	p.ln = ln
	p.serve(ln)
	return nil
}

// Close closes the listener and every connection and waits for every
// goroutine the proxy started. It may be called more than once.
func (p *Proxy) Close() error {
	p.once.Do(func() {
		if p.stopAF != nil {
			p.stopAF()
		}
		p.mu.Lock()
		p.shut(stateClosed)
		p.mu.Unlock()
		p.cancel()
	})
	p.wg.Wait()
	return nil
}

// serve accepts on ln until it is closed. p.mu is held or p is not shared yet.
func (p *Proxy) serve(ln net.Listener) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					continue
				}
				return // closed by Cut or Close
			}
			p.mu.Lock()
			if p.state == stateCut || p.state == stateClosed {
				p.mu.Unlock()
				_ = c.Close()
				continue
			}
			p.accept++
			lctx, lcancel := context.WithCancel(p.ctx)
			l := &link{client: c, ctx: lctx, cancel: lcancel, done: lctx.Done()}
			p.links[l] = struct{}{}
			p.wg.Add(1)
			p.mu.Unlock()
			go func() {
				defer p.wg.Done()
				p.handle(l)
			}()
		}
	}()
}

// gate returns a channel that is closed while bytes may pass.
func (p *Proxy) gate() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state == stateBlackHole {
		return p.resume
	}
	return closedChan
}

// closedChan is gate's answer while bytes may pass.
var closedChan = func() <-chan struct{} { c := make(chan struct{}); close(c); return c }()

// link is one client connection and its connection to the target.
type link struct {
	client   net.Conn
	ctx      context.Context // done once the link is closed
	cancel   context.CancelFunc
	done     <-chan struct{} // ctx.Done()
	mu       sync.Mutex
	upstream net.Conn // nil until dialed
	closed   bool
	cutting  atomic.Bool // CutAfterFunc matched: close at the target's next answer
}

// close closes both connections and ends the link's waits. Safe to call
// more than once and from any goroutine.
func (l *link) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.closed = true
	l.cancel()
	_ = l.client.Close()
	if l.upstream != nil {
		_ = l.upstream.Close()
	}
}

func (p *Proxy) handle(l *link) {
	defer func() {
		l.close()
		p.mu.Lock()
		delete(p.links, l)
		p.mu.Unlock()
	}()
	// A Cut or Close while dialing ends the dial: they cancel l.ctx.
	dctx, cancel := context.WithTimeout(l.ctx, p.opts.DialTimeout)
	up, err := (&net.Dialer{}).DialContext(dctx, "tcp", p.target)
	cancel()
	if err != nil {
		return
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		_ = up.Close()
		return
	}
	l.upstream = up
	l.mu.Unlock()

	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pipe(l, l.client, up) }()
	go func() { defer wg.Done(); p.pipe(l, up, l.client) }()
	wg.Wait()
}

type chunk struct {
	b       []byte
	release time.Time
}

// pipe forwards src to dst through a delay queue: a reader goroutine stamps
// each chunk with the time it may be written, a writer writes it then. When
// src ends, the writer delivers what is queued and half-closes dst; when
// both directions have ended (or a write fails), the link closes.
func (p *Proxy) pipe(l *link, src, dst net.Conn) {
	q := make(chan chunk, queueLen)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // reader
		defer wg.Done()
		defer close(q)
		buf := make([]byte, chunkSize)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				c := chunk{b: append([]byte(nil), buf[:n]...), release: time.Now().Add(p.opts.Latency)}
				select {
				case q <- c:
				case <-l.done:
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()

	// writer
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	ok := true
	for c := range q {
		if !ok {
			continue // drain so the reader is never stuck
		}
		if d := time.Until(c.release); d > 0 {
			if timer == nil {
				timer = time.NewTimer(d)
			} else {
				timer.Reset(d)
			}
			select {
			case <-timer.C:
			case <-l.done:
				ok = false
				continue
			}
		}
		if !p.wait(l) {
			ok = false
			continue
		}
		if src == l.client && p.opts.CutAfterFunc != nil && p.opts.CutAfterFunc(c.b) {
			l.cutting.Store(true)
		} else if src != l.client && l.cutting.Load() {
			ok = false
			l.close()
			continue
		}
		if _, err := dst.Write(c.b); err != nil {
			ok = false
			l.close()
		}
	}
	wg.Wait()
	if ok {
		if cw, isTCP := dst.(interface{ CloseWrite() error }); isTCP {
			_ = cw.CloseWrite()
		} else {
			l.close()
		}
	}
	// The other direction may still be running; handle closes the link
	// once both have ended.
}

// wait blocks while the proxy is a black hole; false if the link closed.
func (p *Proxy) wait(l *link) bool {
	for {
		select {
		case <-l.done:
			return false
		default:
		}
		g := p.gate()
		if g == closedChan {
			return true
		}
		select {
		case <-g: // the black hole ended; look at the state again
		case <-l.done:
			return false
		}
	}
}
