package bot

import (
	"container/list"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/classbot/classbot/agent"
)

// OutcomeRateLimited is the outcome of an /ask refused by STUDENT_ASK_RATE.
const OutcomeRateLimited = "rate_limited"

// studentKey names one student on one platform.
type studentKey struct{ platform, workspace, user string }

// askLimits is STUDENT_ASK_RATE: a token bucket per student, refilled at the
// rate and holding as many tokens as one minute brings, so a student may ask
// a minute's questions at once and then one at a time. The table holds at
// most max students; past that the least recently seen is forgotten (and
// would start again with a full bucket). It is safe for concurrent use.
type askLimits struct {
	perMinute float64
	limit     rate.Limit
	burst     int
	max       int

	mu    sync.Mutex
	order *list.List // of *askLimit, the most recently seen first
	byKey map[studentKey]*list.Element
}

type askLimit struct {
	key studentKey
	lim *rate.Limiter
}

// newAskLimits returns the limits for perMinute questions a minute per
// student, remembering at most max students; nil if perMinute is not
// positive (no limit).
func newAskLimits(perMinute float64, max int) *askLimits {
	if perMinute <= 0 {
		return nil
	}
	return &askLimits{
		perMinute: perMinute,
		limit:     rate.Limit(perMinute / 60),
		burst:     max1(int(math.Ceil(perMinute))),
		max:       max1(max),
		order:     list.New(),
		byKey:     make(map[studentKey]*list.Element),
	}
}

func max1(n int) int { return max(n, 1) }

// take uses one of k's questions at now. If none is left it uses nothing
// and returns how long until one is.
func (l *askLimits) take(k studentKey, now time.Time) (wait time.Duration, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, found := l.byKey[k]
	if found {
		l.order.MoveToFront(e)
	} else {
		if l.order.Len() >= l.max {
			oldest := l.order.Back()
			l.order.Remove(oldest)
			delete(l.byKey, oldest.Value.(*askLimit).key)
		}
		e = l.order.PushFront(&askLimit{key: k, lim: rate.NewLimiter(l.limit, l.burst)})
		l.byKey[k] = e
	}
	r := e.Value.(*askLimit).lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d, false
	}
	return 0, true
}

// len reports how many students the table holds.
func (l *askLimits) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.order.Len()
}

// rateLimitedText is the kind answer to a student over STUDENT_ASK_RATE.
func rateLimitedText(perMinute float64, wait time.Duration) string {
	secs := int(math.Ceil(wait.Seconds()))
	when := fmt.Sprintf("in %d seconds", secs)
	if secs <= 1 {
		when = "in a second"
	}
	return fmt.Sprintf("You're asking quickly! So that the assistant has time for everyone, each student can ask %s questions a minute. Please try again %s.",
		trimFloat(perMinute), when)
}

func trimFloat(f float64) string {
	if f == math.Trunc(f) {
		return fmt.Sprintf("%.0f", f)
	}
	return fmt.Sprintf("%.1f", f)
}

// limitAsk checks c against STUDENT_ASK_RATE if it is an /ask. Over the
// limit it returns the student's answer and sets tr's outcome; nothing of
// the command is worked on, so no model call and no memory.
func (d *Dispatcher) limitAsk(c Command, tr *Trace) (Reply, bool) {
	if d.asks == nil {
		return Reply{}, false
	}
	if spec := lookup(c.Name); spec == nil || spec.Name != "ask" {
		return Reply{}, false
	}
	wait, ok := d.asks.take(studentKey{c.Platform, c.Workspace, c.User}, time.Now())
	if ok {
		return Reply{}, false
	}
	tr.Outcome = OutcomeRateLimited
	return Reply{Text: rateLimitedText(d.asks.perMinute, wait), Ephemeral: true}, true
}

// slotEstimator is what the Dispatcher asks the model runner
// (*agent.Runner) before taking an /ask: whether a new model call of the
// class would get its slot and finish within the command timeout, the
// place in line it would take and about how long it would wait.
type slotEstimator interface {
	AdmitsWithin(class string, d time.Duration) (place int, wait time.Duration, ok bool)
}

// modelFull answers an /ask at once when its model call could not get a
// slot in time to finish within CommandTimeout (by the rule a waiting call
// leaves the line by, so that a command is not acknowledged only to hear
// "busy" a moment later): the student hears now, with their place and
// when to try again, rather than "took too long" minutes later. Only /ask:
// a registration is saved even when the model is too busy to welcome.
func (d *Dispatcher) modelFull(c Command, tr *Trace) (Reply, bool) {
	est, ok := d.bot.agent.(slotEstimator)
	if !ok {
		return Reply{}, false
	}
	if spec := lookup(c.Name); spec == nil || spec.Name != "ask" {
		return Reply{}, false
	}
	place, wait, fits := est.AdmitsWithin(ClassOf(c), d.cfg.CommandTimeout)
	if fits {
		return Reply{}, false
	}
	tr.Outcome = OutcomeBusy
	return Reply{Text: modelFullText(place, wait), Ephemeral: true}, true
}

// modelFullText tells a student the line is longer than an answer can
// wait, with their place and when to try again (the line's length, to the
// next ten seconds).
func modelFullText(place int, wait time.Duration) string {
	secs := max(int(math.Ceil(wait.Seconds()/10))*10, 10)
	return fmt.Sprintf("Lots of students are asking right now: you would be #%d in line for the assistant, longer than I can keep you waiting. Please try again in %d seconds.", place, secs)
}

// lineTooLong turns a work's model error into the student's answer when
// the call left the line for a slot early (*agent.LineError: its turn
// would have come after the command timeout, or it waited too long
// without being told its place), with the outcome OutcomeBusy. Nothing was
// asked of the model for it. A queued attempt's outcome is
// OutcomeAgentError instead, so that the job is tried again later while
// it has attempts left; its last attempt gives this answer.
func lineTooLong(err error, tr *Trace) (Reply, bool) {
	var le *agent.LineError
	if !errors.As(err, &le) {
		return Reply{}, false
	}
	if tr.queued {
		tr.fail(OutcomeAgentError, fmt.Errorf("answer question: %w", err))
	} else {
		tr.Outcome = OutcomeBusy
	}
	return Reply{Text: lineTooLongText(le.Place, le.Wait), Ephemeral: true}, true
}

// lineTooLongText tells a student who waited in line that the line is
// longer than the answer can wait, with when to try again (the rest of the
// line's wait, to the next ten seconds). It must not say "in line for the
// assistant": that is the place-in-line edit's wording.
func lineTooLongText(place int, wait time.Duration) string {
	secs := max(int(math.Ceil(wait.Seconds()/10))*10, 10)
	return fmt.Sprintf("Lots of students are asking right now: you're #%d in line, longer than I can keep you waiting. Please try again in %d seconds.", place, secs)
}

var _ slotEstimator = (*agent.Runner)(nil)
