package main

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/queue"
)

// platformDeadline is Slack's and Discord's: the first response must come
// within 3 seconds.
const platformDeadline = 3.0 // seconds

// metrics are classbot's Prometheus metrics, on their own registry and
// served at GET /metrics. Safe for concurrent use.
type metrics struct {
	// servedPlatforms are the platforms this process's queue workers
	// answer through, once they have started.
	servedPlatforms atomic.Pointer[[]string]

	reg            *prometheus.Registry
	commands       *prometheus.CounterVec
	ackLatency     *prometheus.HistogramVec
	storeLatency   *prometheus.HistogramVec
	agentLatency   *prometheus.HistogramVec
	endToEnd       *prometheus.HistogramVec
	deadlineMisses *prometheus.CounterVec
	modelRetries   prometheus.Counter
	refused        *prometheus.CounterVec
	registrations  *prometheus.CounterVec
	registered     prometheus.Gauge
	batchRows      prometheus.Histogram
	commitLatency  prometheus.Histogram
	purged         prometheus.Counter

	// queue mode
	jobAttempts *prometheus.CounterVec
	jobWait     prometheus.Histogram
	jobRun      prometheus.Histogram
	jobTries    prometheus.Histogram
	jobRescued  prometheus.Counter
	jobExpired  prometheus.Counter
	jobSnoozed  *prometheus.CounterVec
}

// ackBuckets resolve the 3-second deadline, from 1 ms to 10 s.
var ackBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2, 3, 5, 10}

// workBuckets cover store writes and model calls, from 1 ms to 2 minutes.
var workBuckets = []float64{.001, .005, .01, .05, .1, .25, .5, 1, 2, 3, 5, 10, 30, 60, 120}

func newMetrics(inFlight func() int) *metrics {
	reg := prometheus.NewRegistry()
	m := &metrics{
		reg: reg,
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "classbot_commands_total", Help: "Commands handled, by platform, command, mode and outcome.",
		}, []string{"platform", "command", "mode", "outcome"}),
		ackLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "classbot_ack_latency_seconds", Help: "Time from receiving a command to its first response (the platform's 3 s deadline).", Buckets: ackBuckets,
		}, []string{"platform", "mode"}),
		storeLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "classbot_store_latency_seconds", Help: "Time spent writing a registration.", Buckets: workBuckets,
		}, []string{"platform", "mode"}),
		agentLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "classbot_agent_latency_seconds", Help: "Time spent in the model, retries included.", Buckets: workBuckets,
		}, []string{"platform", "command"}),
		endToEnd: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "classbot_end_to_end_seconds", Help: "Time from receiving a command to delivering its answer.", Buckets: workBuckets,
		}, []string{"platform", "command", "mode"}),
		deadlineMisses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "classbot_deadline_misses_total", Help: "Commands whose first response took longer than the platform's 3 s deadline.",
		}, []string{"platform", "mode"}),
		modelRetries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "classbot_model_retries_total", Help: "Model calls retried after a 429, a 5xx or a transport error.",
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "classbot_refused_requests_total", Help: "Platform requests refused before dispatch, by reason.",
		}, []string{"platform", "reason"}),
		registrations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "classbot_discord_command_registrations_total", Help: "Attempts to register the Discord slash commands, by result (ok, error).",
		}, []string{"result"}),
		registered: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "classbot_discord_commands_registered", Help: "1 once the Discord slash commands are registered, 0 while registration is failing or not yet done.",
		}),
		batchRows: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "classbot_store_batch_rows", Help: "Writes committed together by the store's group commit, per transaction.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256},
		}),
		commitLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "classbot_store_commit_seconds", Help: "Round trip of one group-commit transaction.", Buckets: ackBuckets,
		}),
		purged: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "classbot_ledger_purged_rows_total", Help: "Ledger rows deleted for being older than INTERACTIONS_RETENTION.",
		}),
		jobAttempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "classbot_queue_attempts_total", Help: "Attempts of queued jobs run by this process, by result (done: answered and completed; retry: will be tried again).",
		}, []string{"result"}),
		jobWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "classbot_queue_wait_seconds", Help: "Time a queued job waited from enqueued (or its retry's scheduled time) to started.", Buckets: workBuckets,
		}),
		jobRun: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "classbot_queue_run_seconds", Help: "Time one attempt of a queued job ran, from started to done.", Buckets: workBuckets,
		}),
		jobTries: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "classbot_queue_job_attempts", Help: "Attempts a queued job took, counted when it finished.", Buckets: []float64{1, 2, 3, 4, 5, 6, 8, 10},
		}),
		jobRescued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "classbot_queue_rescued_total", Help: "Attempts that followed a rescue: the job's previous run was left running by a crashed process.",
		}),
		jobExpired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "classbot_queue_expired_total", Help: "Queued commands whose answer came after the platform's window with no bot token to carry it (outcome expired).",
		}),
		jobSnoozed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "classbot_queue_snoozed_total", Help: "Jobs this process put back without using an attempt, by reason (no_platform: it cannot answer through the job's platform; stopping: a shutdown interrupted it).",
		}, []string{"reason"}),
	}
	reg.MustRegister(m.commands, m.ackLatency, m.storeLatency, m.agentLatency, m.endToEnd,
		m.deadlineMisses, m.modelRetries, m.refused, m.registrations, m.registered, m.batchRows, m.commitLatency, m.purged,
		m.jobAttempts, m.jobWait, m.jobRun, m.jobTries, m.jobRescued, m.jobExpired, m.jobSnoozed,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "classbot_in_flight", Help: "Commands in progress (every mode), from arrival to the answer's delivery.",
		}, func() float64 { return float64(inFlight()) }),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// observe records one finished command.
func (m *metrics) observe(t bot.Trace) {
	mode := string(t.Mode)
	m.commands.WithLabelValues(t.Platform, t.Command, mode, t.Outcome).Inc()
	m.observeAck(t)
	if t.Store > 0 {
		m.storeLatency.WithLabelValues(t.Platform, mode).Observe(t.Store.Seconds())
	}
	if t.Agent > 0 {
		m.agentLatency.WithLabelValues(t.Platform, t.Command).Observe(t.Agent.Seconds())
	}
	if total := t.Total(); total > 0 {
		m.endToEnd.WithLabelValues(t.Platform, t.Command, mode).Observe(total.Seconds())
	}
}

// observeAck records the first response's latency (queue mode calls it
// through bot.Config.AckFunc; a worker's trace has no acknowledgement).
func (m *metrics) observeAck(t bot.Trace) {
	if t.Acknowledged.IsZero() {
		return
	}
	mode := string(t.Mode)
	ack := t.Acknowledged.Sub(t.Received).Seconds()
	m.ackLatency.WithLabelValues(t.Platform, mode).Observe(ack)
	if ack > platformDeadline {
		m.deadlineMisses.WithLabelValues(t.Platform, mode).Inc()
	}
}

// refuse counts a request refused before dispatch (bad signature, stale,
// too large, malformed). Adapters call it through their Config.OnRefuseFunc.
func (m *metrics) refuse(platform, reason string) {
	m.refused.WithLabelValues(platform, reason).Inc()
}

// observeBatch records one group-commit transaction of the store.
func (m *metrics) observeBatch(rows int, commit time.Duration) {
	m.batchRows.Observe(float64(rows))
	m.commitLatency.Observe(commit.Seconds())
}

// observeJob records one attempt of a queued job (queue.Config.ObserveFunc).
func (m *metrics) observeJob(r queue.Report) {
	if r.Snoozed != "" {
		m.jobSnoozed.WithLabelValues(r.Snoozed).Inc()
		return
	}
	m.jobWait.Observe(r.Wait.Seconds())
	m.jobRun.Observe(r.Run.Seconds())
	if r.Rescued {
		m.jobRescued.Inc()
	}
	if r.Retry {
		m.jobAttempts.WithLabelValues("retry").Inc()
		return
	}
	m.jobAttempts.WithLabelValues("done").Inc()
	m.jobTries.Observe(float64(r.Attempt))
	if r.Outcome == bot.OutcomeExpired {
		m.jobExpired.Inc()
	}
}

// watchQueue adds the queue's depth, read from the database at most once
// a second (a scrape never holds a connection for long).
func (m *metrics) watchQueue(pool *pgxpool.Pool) {
	m.reg.MustRegister(&depthCollector{pool: pool, served: &m.servedPlatforms})
}

var depthDesc = prometheus.NewDesc("classbot_queue_jobs", "Queued jobs not finished, by River state (available: waiting for a worker).", []string{"state"}, nil)
var oldestDesc = prometheus.NewDesc("classbot_queue_oldest_available_seconds", "How long the oldest available job has waited for a worker.", nil, nil)
var unservedDesc = prometheus.NewDesc("classbot_queue_not_taken_jobs",
	"Available jobs of a platform this process cannot answer through: it never takes them; a process with that platform's secrets must.", []string{"platform"}, nil)

type depthCollector struct {
	pool   *pgxpool.Pool
	served *atomic.Pointer[[]string] // the platforms this process's workers answer through; nil: not started
	mu     sync.Mutex
	at     time.Time
	last   queue.Depth
	err    error
}

func (c *depthCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- depthDesc
	ch <- oldestDesc
	ch <- unservedDesc
}

func (c *depthCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	if time.Since(c.at) > time.Second {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c.last, c.err = queue.ReadDepth(ctx, c.pool)
		cancel()
		c.at = time.Now()
	}
	d, err := c.last, c.err
	c.mu.Unlock()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(depthDesc, err)
		return
	}
	for state, n := range map[string]int64{"available": d.Available, "running": d.Running, "retryable": d.Retryable, "scheduled": d.Scheduled} {
		ch <- prometheus.MustNewConstMetric(depthDesc, prometheus.GaugeValue, float64(n), state)
	}
	ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, d.OldestAvailable.Seconds())
	if served := c.served.Load(); served != nil {
		for p, n := range d.AvailableBy {
			if !slices.Contains(*served, p) {
				ch <- prometheus.MustNewConstMetric(unservedDesc, prometheus.GaugeValue, float64(n), p)
			}
		}
	}
}

// commandRegistration records one attempt to register the Discord commands.
func (m *metrics) commandRegistration(err error) {
	if err != nil {
		m.registrations.WithLabelValues("error").Inc()
		m.registered.Set(0)
		return
	}
	m.registrations.WithLabelValues("ok").Inc()
	m.registered.Set(1)
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}
