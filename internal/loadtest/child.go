package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Child starts the server under test as a child process: "classbot serve",
// or the bare reference. Its Start method is a StartFunc.
//
// The child runs in a fresh private directory (os.MkdirTemp, removed when
// it stops), so it reads no .env file, with only PATH, HOME and the run's
// variables in its environment. It listens on a port the parent picked (its
// HTTP_ADDR): the parent knows the address before the child starts and
// waits for GET /healthz there, so nothing has to read the child's output.
// Its stdout and stderr go to a log file that is kept for inspection.
type Child struct {
	// Path is the executable; Args its arguments, such as ["serve"].
	Path string
	Args []string
	// Name is what progress lines call it: "bot" or "bare reference".
	Name string
	// Store is the Bot.Store the child reports ("postgres", "memory", "none").
	Store string
	// CPUs, when set, pins the child to these CPUs (taskset when it is on
	// PATH, else sched_setaffinity on Linux); CPUList is the same list as
	// given, for taskset and for the progress line.
	CPUs    []int
	CPUList string
	// Progress gets one line once the child is up (nil: none).
	Progress io.Writer
	// StartTimeout bounds the wait for /healthz. Default 60 s.
	StartTimeout time.Duration
}

// errPortTaken is the child's failure to listen on the port picked for it,
// because another process took it between the pick and the child's listen.
var errPortTaken = errors.New("the port picked for the child was taken")

// Start starts the child with vars (HTTP_ADDR is replaced by a free port on
// 127.0.0.1) and returns once it answers GET /healthz. The child gets
// SIGTERM when this process dies (Linux). Bot.Stop sends it SIGTERM, waits
// for it until ctx is done, then kills it; it removes the working directory.
func (c Child) Start(ctx context.Context, vars map[string]string) (*Bot, error) {
	var err error
	for range 3 {
		var b *Bot
		b, err = c.start(ctx, vars)
		if !errors.Is(err, errPortTaken) {
			return b, err
		}
	}
	return nil, err
}

func (c Child) start(ctx context.Context, vars map[string]string) (*Bot, error) {
	addr, err := freeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "classbot-loadtest-bot-*")
	if err != nil {
		return nil, err
	}
	logf, err := os.CreateTemp("", "classbot-loadtest-*.log")
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	defer logf.Close() // the child has its own descriptor

	name, args := c.Path, c.Args
	useTaskset := false
	if c.CPUList != "" {
		if ts, err := exec.LookPath("taskset"); err == nil {
			name, args, useTaskset = ts, append([]string{"-c", c.CPUList, c.Path}, c.Args...), true
		}
	}
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range vars {
		if k != "HTTP_ADDR" {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	cmd.Env = append(cmd.Env, "HTTP_ADDR="+addr)
	cmd.Stdout, cmd.Stderr = logf, logf
	PrepareChild(cmd)
	if len(c.CPUs) > 0 && !useTaskset {
		err = StartPinned(cmd, c.CPUs)
	} else {
		err = cmd.Start()
	}
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("start %s: %w", c.Path, err)
	}

	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	signaled := false
	stop := func(ctx context.Context) error {
		defer os.RemoveAll(dir)
		if !signaled {
			signaled = true
			_ = cmd.Process.Signal(syscall.SIGTERM)
		}
		select {
		case <-exited:
			return waitErr
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			<-exited
			return ctx.Err()
		}
	}

	url := "http://" + addr
	timeout := c.StartTimeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	if err := waitUp(ctx, url, exited, timeout); err != nil {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = stop(sctx)
		log := tail(logf.Name(), 20)
		if strings.Contains(log, "address already in use") {
			_ = os.Remove(logf.Name())
			return nil, errPortTaken
		}
		return nil, fmt.Errorf("%s: %w; its log: %s\n%s", c.name(), err, logf.Name(), log)
	}
	if c.Progress != nil {
		pin := "not pinned"
		if c.CPUList != "" {
			pin = "pinned to CPUs " + c.CPUList
		}
		fmt.Fprintf(c.Progress, "loadtest: %s pid %d at %s (%s), log %s\n", c.name(), cmd.Process.Pid, url, pin, logf.Name())
	}
	return &Bot{URL: url, PID: cmd.Process.Pid, Store: c.Store, Stop: stop}, nil
}

func (c Child) name() string {
	if c.Name != "" {
		return c.Name
	}
	return "bot"
}

// freeLoopbackAddr returns 127.0.0.1:PORT for a port that was free a moment
// ago. Another process may take it before the child listens: Start then
// sees the child fail with "address already in use" and tries another.
func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		return "", err
	}
	return addr, nil
}

// waitUp polls GET base/healthz until it answers 200, the child exits, ctx
// is done or timeout passes.
func waitUp(ctx context.Context, base string, exited <-chan struct{}, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/healthz", nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				select {
				case <-exited: // someone else answered on its port
					return errors.New("it stopped before it listened")
				default:
					return nil
				}
			}
		}
		select {
		case <-exited:
			return errors.New("it stopped before it listened")
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("it did not answer GET %s/healthz within %s", base, timeout)
			}
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// tail is the last n lines of file.
func tail(file string, n int) string {
	b, err := os.ReadFile(file)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
