package loadtest

import (
	"bytes"
	"context"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestProxyDatabaseRewritesOnlyTheHost(t *testing.T) {
	// Something to forward to; ProxyDatabase does not dial until a client
	// connects, but the target must parse.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	in := "postgres://postgres@" + ln.Addr().String() + "/classbot?sslmode=disable&pool_max_conns=16"
	p, got, err := ProxyDatabase(t.Context(), in, 5*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	u, err := url.Parse(got)
	if err != nil {
		t.Fatal(err)
	}
	if u.Host != p.Addr() || u.Host == ln.Addr().String() {
		t.Errorf("bot URL host %q, want the proxy's %q", u.Host, p.Addr())
	}
	if u.Path != "/classbot" || u.Query().Get("sslmode") != "disable" || u.Query().Get("pool_max_conns") != "16" || u.User.Username() != "postgres" {
		t.Errorf("bot URL %q lost part of %q", got, in)
	}
	if p.Latency() != 5*time.Millisecond {
		t.Errorf("proxy latency %s, want 5ms", p.Latency())
	}
}

func TestProxyDatabaseRefusesURLsItCannotProxy(t *testing.T) {
	for name, in := range map[string]string{
		"keyword form":  "host=127.0.0.1 dbname=classbot",
		"host in query": "postgres://postgres@/classbot?host=/var/run/postgresql",
		"several hosts": "postgres://postgres@db1:5432,db2:5432/classbot",
		"other scheme":  "mysql://root@127.0.0.1/classbot",
	} {
		t.Run(name, func(t *testing.T) {
			if p, _, err := ProxyDatabase(context.Background(), in, time.Millisecond); err == nil {
				p.Close()
				t.Errorf("ProxyDatabase(%q) succeeded, want an error", in)
			}
		})
	}
}

func TestReportShowsCommitsOrNA(t *testing.T) {
	commits, per := int64(300), 3.0
	pg := &Report{Label: "async, postgres +5ms", Mode: "async", Store: "postgres", DBLatency: "5ms",
		Complete: 100, PostgresCommits: &commits, CommitsPerInteraction: &per}
	mem := &Report{Label: "async, memory store", Mode: "async", Store: "memory", Complete: 100}
	bare := &Report{Label: "bare", Mode: "bare", Store: "none", Complete: 100}

	var b bytes.Buffer
	pg.WriteText(&b)
	for _, want := range []string{"through a proxy adding 5ms each way", "PostgreSQL commits  300, 3.00 per complete interaction"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("postgres report lacks %q:\n%s", want, b.String())
		}
	}
	b.Reset()
	mem.WriteText(&b)
	if !strings.Contains(b.String(), "PostgreSQL commits  n/a (store memory)") {
		t.Errorf("memory report does not say n/a:\n%s", b.String())
	}

	b.Reset()
	WriteTable(&b, []*Report{bare, mem, pg})
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	if len(lines) != 4 || !strings.Contains(lines[0], "commits/interaction") {
		t.Fatalf("table:\n%s\nwant a header and three rows", b.String())
	}
	for i, want := range []string{"n/a", "n/a", "3.00"} {
		if f := strings.Fields(lines[i+1]); f[len(f)-1] != want {
			t.Errorf("row %d ends with %q, want %q:\n%s", i+1, f[len(f)-1], want, b.String())
		}
	}
	if !strings.Contains(lines[3], "postgres +5ms") {
		t.Errorf("the PostgreSQL row does not show the added latency: %q", lines[3])
	}

	b.Reset()
	Environment{CPU: "Test CPU", CPUs: 2, DBLatency: "5ms", CommitLatencyMs: 0.6}.WriteHeader(&b)
	for _, want := range []string{"Test CPU (2 CPUs)", "commit 0.60ms", "proxy adding 5ms each way"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("header %q lacks %q", b.String(), want)
		}
	}
}

func TestCPUModelNamesTheProcessor(t *testing.T) {
	if m := CPUModel(); m == "" {
		t.Error("CPUModel is empty")
	}
}

func TestQueueReportCountsEachFollowUpAndItsJobs(t *testing.T) {
	r := &Report{Label: "queue", Mode: "queue", Store: "postgres", FollowUpsExpected: 100, FollowUpsDelivered: 99,
		FollowUpsExactlyOnce: 97, FollowUpDuplicates: 2, FollowUpExtraPosts: 3, FollowUpsAfterRefusal: 5, Complete: 99,
		MachineCPUSeconds: 40, BotCPUSeconds: 20, GeneratorCPUSeconds: 10, PostgresCPUSeconds: 6, OtherCPUSeconds: 4,
		Jobs: &QueueJobs{Inserted: 100, Completed: 99, Unfinished: 1, Retried: 2}}
	var b bytes.Buffer
	r.WriteText(&b)
	for _, want := range []string{
		"99 of 100 delivered",
		"exactly once        97 of 100; posted more than once: 2 (3 extra posts)",
		"River jobs          100 inserted, 99 completed, 1 unfinished, 2 run more than once",
		"other programs 4.00s",
		"5 commands answered busy/sorry at once were followed up all the same",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("queue report lacks %q:\n%s", want, b.String())
		}
	}
	b.Reset()
	WriteTable(&b, []*Report{r})
	if !strings.Contains(b.String(), "99/100") || !strings.Contains(b.String(), "posted twice") {
		t.Errorf("table does not show the follow-ups and the commands posted twice:\n%s", b.String())
	}
}
