package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/classbot/classbot/bot/slack/slacktest"
	"github.com/classbot/classbot/internal/llmstub"
	"github.com/classbot/classbot/internal/pgtest"
)

const (
	// modelOutage is how long the model refuses every request: issue 11's
	// minute, for real. It overlaps the other long test (t.Parallel).
	modelOutage = 60 * time.Second
	// outageRetryAfter is the Retry-After the model's 429s carry.
	outageRetryAfter = 2
	// recoveredWithin bounds how long after the outage every job is
	// answered. Retries wait 2 s doubling to 60 s (queue.NextRetry), and
	// River's scheduler moves a retry to available every 5 s: a job whose
	// next try was scheduled just before the outage ended waits up to
	// about half the outage, plus the scheduler's 5 s, for it.
	recoveredWithin = modelOutage/2 + 30*time.Second
	outageRegisters = 20
	outageAsks      = 5
)

// outageModel answers 429 with Retry-After (every other request 500)
// until it recovers, then as llmstub does.
type outageModel struct {
	stub    *llmstub.Server
	URL     string
	mu      sync.Mutex
	until   time.Time // refuses until then
	refused atomic.Int64
	firstOK atomic.Int64 // UnixNano of the first answer after the outage
}

func newOutageModel(t *testing.T, outage time.Duration) *outageModel {
	t.Helper()
	m := &outageModel{stub: llmstub.New(0), until: time.Now().Add(outage)}
	srv := httptest.NewServer(http.HandlerFunc(m.serveHTTP))
	m.URL = srv.URL
	t.Cleanup(func() { m.stub.Close(); srv.Close() })
	return m
}

func (m *outageModel) down() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return time.Now().Before(m.until)
}

func (m *outageModel) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if m.down() {
		n := m.refused.Add(1)
		w.Header().Set("Content-Type", "application/json")
		if n%2 == 0 {
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprint(w, `{"error":{"message":"The server had an error while processing your request.","type":"server_error"}}`)
			return
		}
		w.Header().Set("Retry-After", fmt.Sprint(outageRetryAfter))
		w.WriteHeader(http.StatusTooManyRequests)
		fmt.Fprint(w, `{"error":{"message":"Rate limit reached for requests","type":"requests","code":"rate_limit_exceeded"}}`)
		return
	}
	m.firstOK.CompareAndSwap(0, time.Now().UnixNano())
	m.stub.ServeHTTP(w, r)
}

// The model answering 429 with Retry-After, or 500, for modelOutage, then
// recovering: the queued /register and /ask jobs back off (the model
// client's own retries inside an attempt, River's between attempts) and
// complete once it is back, each answered once, every registration kept.
// Without queue mode's retries, or with a final answer given too early,
// the students would be told "Sorry" instead of getting the welcome.
func TestQueueModelOutage(t *testing.T) {
	t.Parallel()
	dbURL := queueDB(t)
	sl := slacktest.New()
	t.Cleanup(sl.Close)
	model := newOutageModel(t, modelOutage)
	s := startServe(t, queueEnv(dbURL, sl, model.URL))

	students := append(studentsOf("/register", outageRegisters, "outage"), studentsOf("/ask", outageAsks, "outage")...)
	sendSlackAll(sl, students, 8, func(int) string { return s.URL })
	requireAcked(t, students)
	// The registrations are stored while the model is down (the store
	// write and the model call run at once; the write does not wait).
	deadline := time.Now().Add(15 * time.Second)
	for registeredOf(t, dbURL, students) < outageRegisters && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if n := registeredOf(t, dbURL, students); n != outageRegisters {
		t.Errorf("%d of %d registrations stored while the model was down, want all", n, outageRegisters)
	}

	// Nobody is answered while the model is down: their jobs retry.
	model.mu.Lock()
	until := model.until
	model.mu.Unlock()
	if err := sl.Wait(time.Until(until), func() bool { return len(answerCalls(sl)) > 0 }); err == nil && model.down() {
		t.Fatalf("a student was answered while the model was down: %s", answerCalls(sl)[0].Body)
	}
	retriesDuring := queryInt(t, dbURL, `SELECT count(*) FROM river_job WHERE attempt > 1`)

	_, last, left := waitAnswered(sl, students, time.Until(until.Add(recoveredWithin)))
	if left > 0 {
		t.Fatalf("%d of %d commands unanswered %s after the model recovered\nstderr:\n%s", left, len(students), recoveredWithin, tail(s.Stderr.String(), 30))
	}
	reposts := checkAnsweredOnce(t, sl, students)
	waitLedgerOK(t, dbURL, students, 15*time.Second)
	if n := registeredOf(t, dbURL, students); n != outageRegisters {
		t.Errorf("%d of %d registrations kept, want all", n, outageRegisters)
	}
	var minAttempt, maxAttempt int
	pgtest.QueryRow(t, dbURL, `SELECT coalesce(min(attempt), 0), coalesce(max(attempt), 0) FROM river_job`, nil, &minAttempt, &maxAttempt)
	if minAttempt < 2 {
		t.Errorf("a job completed at attempt %d: it did not go through the outage", minAttempt)
	}
	t.Logf("model down %s (%d refusals: 429 with Retry-After %d s and 500): %d jobs were retrying by its end; every command answered once, the last %s after it recovered (first model answer after it: %s); attempts %d to %d; %d re-posts",
		modelOutage, model.refused.Load(), outageRetryAfter, retriesDuring, fmtDur(last.Sub(until)),
		fmtDur(time.Unix(0, model.firstOK.Load()).Sub(until)), minAttempt, maxAttempt, reposts)
}
