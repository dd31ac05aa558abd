package loadtest

import (
	"fmt"
	"io"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prometheus/procfs"
)

// Report is one run's figures. Latencies are in milliseconds.
type Report struct {
	Label        string  `json:"label"`
	Mode         string  `json:"mode"`
	Platform     string  `json:"platform"`
	Loop         string  `json:"loop"` // "open" or "closed"
	Rate         float64 `json:"rate,omitempty"`
	Concurrency  int     `json:"concurrency,omitempty"`
	RequestLimit int     `json:"request_limit,omitempty"`
	Connections  int     `json:"connections"`
	Classes      int     `json:"classes"`
	Students     int     `json:"students_per_class"`
	AskRatio     float64 `json:"ask_ratio"`
	ModelLatency string  `json:"model_latency"`
	Store        string  `json:"store"` // postgres, memory, none
	// DBLatency is the latency a proxy between the bot and PostgreSQL
	// added each way ("5ms"); empty when the bot talked to it directly.
	DBLatency string `json:"db_latency,omitempty"`
	// DurationLimit is the send loop's bound; Elapsed the time from the
	// first command to the last acknowledgement.
	DurationLimit  string  `json:"duration_limit"`
	ElapsedSeconds float64 `json:"elapsed_seconds"`

	Sent         int `json:"sent"`
	Dropped      int `json:"dropped"` // open loop: not sent, too many waiting
	Acknowledged int `json:"acknowledged"`
	// Errors are responses other than 200 and failed connections;
	// Timeouts got no response within the request timeout; Late were
	// acknowledged after the 3 s deadline. DeadlineMisses is all three.
	Errors         int     `json:"errors"`
	Timeouts       int     `json:"timeouts"`
	Late           int     `json:"late"`
	DeadlineMisses int     `json:"deadline_misses"`
	Refused        int     `json:"refused"` // answered at once with "busy" or "sorry"
	Ack            Summary `json:"ack_ms"`

	// Follow-ups (async and queue modes), counted per command at the sink:
	// Expected were acknowledged as deferred; Delivered got at least one
	// post; ExactlyOnce got exactly one; Duplicates got more than one (a
	// queue job run twice, or, in async mode on Discord, an answer in
	// several messages), with ExtraPosts the posts beyond each command's
	// first; Unknown matched no command sent.
	FollowUpsExpected    int `json:"follow_ups_expected"`
	FollowUpsDelivered   int `json:"follow_ups_delivered"`
	FollowUpsExactlyOnce int `json:"follow_ups_exactly_once"`
	FollowUpDuplicates   int `json:"follow_up_duplicates"`
	FollowUpExtraPosts   int `json:"follow_up_extra_posts"`
	FollowUpsUnknown     int `json:"follow_ups_unknown"`
	// FollowUpsAfterRefusal are commands answered "busy" or "sorry" at
	// once (Refused: nothing will happen, try again) that got a follow-up
	// anyway: the refusal was not true.
	FollowUpsAfterRefusal int     `json:"follow_ups_after_refusal"`
	EndToEnd              Summary `json:"end_to_end_ms"` // sent → follow-up at the sink (sync, auto's inline answers: → the answer)
	// PlaceEdits are the edits of acknowledgements that told students
	// their place in line for the model; Placed the commands that got at
	// least one, and PlaceLatency the time from sending to the first.
	PlaceEdits   int     `json:"place_edits,omitempty"`
	Placed       int     `json:"placed,omitempty"`
	PlaceLatency Summary `json:"place_ms"`
	// Inline are auto mode's commands answered in the first response
	// itself (the rest were acknowledged and followed up).
	Inline int `json:"inline,omitempty"`
	// MessagesPerCommand is the first responses that were not refusals
	// plus the posts at the sink, per command not refused: 1 when every
	// answer is the first response (sync), 2 when an acknowledgement
	// precedes each answer (async, queue).
	MessagesPerCommand float64 `json:"messages_per_command"`

	// Complete interactions: acknowledged and followed up (async), or
	// answered (sync). CompletePerSecond divides them by the time from the
	// first command to the last completion.
	Complete          int     `json:"complete"`
	AcksPerSecond     float64 `json:"acks_per_second"`
	CompletePerSecond float64 `json:"complete_per_second"`

	// The bot process, read from /proc (zero when unknown).
	BotCPUSeconds             float64 `json:"bot_cpu_seconds,omitempty"`
	BotCPUMicrosPerCompletion float64 `json:"bot_cpu_us_per_interaction,omitempty"`
	BotPeakRSSMB              float64 `json:"bot_peak_rss_mb,omitempty"`
	// GeneratorCPUSeconds is this process's CPU time during the run: the
	// load generator with its model stand-in and follow-up sink (and the
	// bot too when a StartFunc runs it in-process). If it nears the run's
	// length, the generator, not the bot, is the limit.
	GeneratorCPUSeconds float64 `json:"generator_cpu_seconds"`
	// MachineCPUSeconds is the whole machine's busy CPU time during the run
	// (/proc/stat), and PostgresCPUSeconds the part PostgreSQL's processes
	// used (its backends that ended during the run are not counted). What
	// is left after the bot, the generator and PostgreSQL is other
	// programs': OtherCPUSeconds. On a shared machine it says how far to
	// trust the run: a few seconds are the system's own; tens of seconds
	// mean other work competed with the bot and its database.
	MachineCPUSeconds  float64 `json:"machine_cpu_seconds,omitempty"`
	PostgresCPUSeconds float64 `json:"postgres_cpu_seconds,omitempty"`
	OtherCPUSeconds    float64 `json:"other_cpu_seconds,omitempty"`

	DistinctStudents int     `json:"distinct_students_registered"`
	DB               *DBRows `json:"postgres,omitempty"`
	// PostgresCommits is the transactions committed in the bot's database
	// during the run (pg_stat_database.xact_commit after minus before,
	// read-only ones included, the load test's own readings excluded);
	// CommitsPerInteraction divides it by Complete. Both are null for the
	// memory store and the bare reference ("n/a" in the text report).
	PostgresCommits       *int64   `json:"postgres_commits"`
	CommitsPerInteraction *float64 `json:"postgres_commits_per_interaction"`
	// Jobs are queue mode's River jobs of the run; nil otherwise.
	Jobs       *QueueJobs `json:"queue_jobs,omitempty"`
	DBError    string     `json:"postgres_error,omitempty"`
	FirstError string     `json:"first_error,omitempty"`

	ackSamples []time.Duration
}

// Summary is a latency distribution's percentiles, in milliseconds.
type Summary struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

// DBRows counts rows in PostgreSQL after the run, and how many it added.
type DBRows struct {
	Registrations      int64 `json:"registrations"`
	Interactions       int64 `json:"interactions"`
	RegistrationsAdded int64 `json:"registrations_added"`
	InteractionsAdded  int64 `json:"interactions_added"`
}

// AckSamples are the acknowledgement latencies, sorted (for plots).
func (r *Report) AckSamples() []time.Duration { return r.ackSamples }

func summarize(d []time.Duration) Summary {
	if len(d) == 0 {
		return Summary{}
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return summarizeSorted(s)
}

func summarizeSorted(s []time.Duration) Summary {
	if len(s) == 0 {
		return Summary{}
	}
	return Summary{Count: len(s), P50: ms(quantile(s, .50)), P90: ms(quantile(s, .90)), P99: ms(quantile(s, .99)), Max: ms(s[len(s)-1])}
}

// quantile is the nearest-rank quantile of sorted samples.
func quantile(sorted []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(sorted))+0.999999) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func (r *runner) fill(rep *Report, start, sendEnd time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.t.mu.Lock()
	defer r.t.mu.Unlock()

	acks := slices.Clone(r.acks)
	slices.Sort(acks)
	rep.ackSamples = acks
	rep.Ack = summarizeSorted(acks)
	rep.Sent, rep.Dropped, rep.Acknowledged = r.sent, r.dropped, len(acks)
	rep.Errors, rep.Timeouts = r.statusErrors+r.transport, r.timeouts
	for _, d := range acks {
		if d > Deadline {
			rep.Late++
		}
	}
	rep.DeadlineMisses = rep.Late + rep.Errors + rep.Timeouts
	rep.Refused = r.refused
	rep.FirstError = r.errSample
	rep.DistinctStudents = len(r.students)

	last := r.lastAck
	if r.followUps {
		rep.FollowUpsExpected = r.expected
		rep.FollowUpsDelivered = r.t.delivered
		rep.FollowUpsExactlyOnce = r.t.delivered - r.t.duplicates
		rep.FollowUpDuplicates = r.t.duplicates
		rep.FollowUpExtraPosts = r.t.extra
		rep.FollowUpsUnknown = r.t.unknown
		rep.FollowUpsAfterRefusal = r.t.afterRefusal
		// Auto mode answers some commands in the response.
		rep.EndToEnd = summarize(append(slices.Clone(r.t.followLat), r.answers...))
		rep.Complete = r.t.delivered + len(r.answers)
		rep.Inline = len(r.answers)
		rep.PlaceEdits, rep.Placed = r.t.places, len(r.t.placeSeen)
		rep.PlaceLatency = summarize(r.t.placeLat)
		if r.t.last.After(last) || rep.Complete == 0 {
			last = r.t.last
		}
	} else {
		rep.EndToEnd = summarize(r.answers)
		rep.Complete = len(r.answers)
	}
	if last.IsZero() {
		last = sendEnd
	}
	if answered := len(acks) - r.refused; answered > 0 {
		posts := 0
		if r.followUps {
			posts = r.t.delivered + r.t.extra
		}
		rep.MessagesPerCommand = float64(answered+posts) / float64(answered)
	}
	if el := r.lastAck.Sub(start).Seconds(); el > 0 {
		rep.ElapsedSeconds = el
		rep.AcksPerSecond = float64(len(acks)) / el
	}
	if el := last.Sub(start).Seconds(); el > 0 {
		rep.CompletePerSecond = float64(rep.Complete) / el
	}
	if rep.MachineCPUSeconds > 0 {
		rep.OtherCPUSeconds = max(0, rep.MachineCPUSeconds-rep.BotCPUSeconds-rep.GeneratorCPUSeconds-rep.PostgresCPUSeconds)
	}
	if rep.BotCPUSeconds > 0 && rep.Complete > 0 {
		rep.BotCPUMicrosPerCompletion = rep.BotCPUSeconds * 1e6 / float64(rep.Complete)
	}
}

// WriteText writes the report for people.
func (r *Report) WriteText(w io.Writer) {
	load := fmt.Sprintf("closed loop, %d concurrent for up to %s", r.Concurrency, r.DurationLimit)
	if r.RequestLimit > 0 {
		load = fmt.Sprintf("closed loop, %d concurrent, %d commands (at most %s)", r.Concurrency, r.RequestLimit, r.DurationLimit)
	}
	if r.Loop == "open" {
		load = fmt.Sprintf("open loop, %g/s for %s", r.Rate, r.DurationLimit)
	}
	title := r.Mode + " mode"
	if r.Label != "" && r.Label != r.Mode {
		title = r.Label
	}
	fmt.Fprintf(w, "%s: %s, %s, model %s, store %s%s\n", title, r.Platform, load, r.ModelLatency, storeText(r.Store), dbLatencyText(r.DBLatency))
	fmt.Fprintf(w, "  sent                %d (last acknowledgement %.1fs after the first command)", r.Sent, r.ElapsedSeconds)
	if r.Dropped > 0 {
		fmt.Fprintf(w, "; %d more not sent: too many waiting", r.Dropped)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  acknowledged        %d   errors %d   timeouts %d   answered busy/sorry %d\n", r.Acknowledged, r.Errors, r.Timeouts, r.Refused)
	fmt.Fprintf(w, "  ack latency         p50 %s   p90 %s   p99 %s   max %s\n", fmtMs(r.Ack.P50), fmtMs(r.Ack.P90), fmtMs(r.Ack.P99), fmtMs(r.Ack.Max))
	fmt.Fprintf(w, "  deadline misses     %d (acknowledged after 3s: %d, errors and timeouts: %d)\n", r.DeadlineMisses, r.Late, r.Errors+r.Timeouts)
	if r.Mode != "sync" {
		fmt.Fprintf(w, "  follow-ups          %d of %d delivered; end-to-end p50 %s   p99 %s   max %s\n",
			r.FollowUpsDelivered, r.FollowUpsExpected, fmtMs(r.EndToEnd.P50), fmtMs(r.EndToEnd.P99), fmtMs(r.EndToEnd.Max))
		fmt.Fprintf(w, "  exactly once        %d of %d; posted more than once: %d (%d extra posts); for no command sent: %d\n",
			r.FollowUpsExactlyOnce, r.FollowUpsExpected, r.FollowUpDuplicates, r.FollowUpExtraPosts, r.FollowUpsUnknown)
		if r.PlaceEdits > 0 {
			fmt.Fprintf(w, "  place in line       %d commands told their place (%d edits); first after p50 %s   p99 %s\n",
				r.Placed, r.PlaceEdits, fmtMs(r.PlaceLatency.P50), fmtMs(r.PlaceLatency.P99))
		}
		if r.Mode == "auto" {
			fmt.Fprintf(w, "  inline              %d answered in the first response; %.2f messages per command\n", r.Inline, r.MessagesPerCommand)
		}
		if r.FollowUpsAfterRefusal > 0 {
			fmt.Fprintf(w, "  after a refusal     %d commands answered busy/sorry at once were followed up all the same\n", r.FollowUpsAfterRefusal)
		}
	} else {
		fmt.Fprintf(w, "  answers             %d in the response (sync); p50 %s   p99 %s\n", r.Complete, fmtMs(r.EndToEnd.P50), fmtMs(r.EndToEnd.P99))
	}
	fmt.Fprintf(w, "  throughput          %.0f acknowledgements/s, %.0f complete interactions/s\n", r.AcksPerSecond, r.CompletePerSecond)
	if r.BotCPUSeconds > 0 {
		fmt.Fprintf(w, "  bot CPU             %.2fs, %.0f µs per complete interaction; peak RSS %.0f MB\n", r.BotCPUSeconds, r.BotCPUMicrosPerCompletion, r.BotPeakRSSMB)
	} else {
		fmt.Fprintf(w, "  bot CPU             not measured (the bot is not a separate process with a known pid)\n")
	}
	fmt.Fprintf(w, "  generator CPU       %.2fs (this process: load, model stand-in, sink)\n", r.GeneratorCPUSeconds)
	if r.MachineCPUSeconds > 0 {
		fmt.Fprintf(w, "  machine CPU         %.2fs busy: PostgreSQL %.2fs, other programs %.2fs (a shared machine: trust the run less the larger this is)\n",
			r.MachineCPUSeconds, r.PostgresCPUSeconds, r.OtherCPUSeconds)
	}
	switch {
	case r.DB != nil:
		fmt.Fprintf(w, "  PostgreSQL          registrations %d (+%d; %d distinct students registered), interactions %d (+%d)\n",
			r.DB.Registrations, r.DB.RegistrationsAdded, r.DistinctStudents, r.DB.Interactions, r.DB.InteractionsAdded)
	case r.DBError != "":
		fmt.Fprintf(w, "  PostgreSQL          could not count rows: %s\n", r.DBError)
	}
	if r.PostgresCommits != nil {
		fmt.Fprintf(w, "  PostgreSQL commits  %d, %s per complete interaction\n", *r.PostgresCommits, r.commitsText())
	} else {
		fmt.Fprintf(w, "  PostgreSQL commits  n/a (store %s)\n", r.Store)
	}
	if j := r.Jobs; j != nil {
		fmt.Fprintf(w, "  River jobs          %d inserted, %d completed, %d unfinished, %d run more than once, %d discarded or cancelled\n",
			j.Inserted, j.Completed, j.Unfinished, j.Retried, j.Discarded)
	}
	if r.FirstError != "" {
		fmt.Fprintf(w, "  first error         %s\n", r.FirstError)
	}
}

func storeText(s string) string {
	switch s {
	case "memory":
		return "MEMORY (the bot's in-memory store: nothing is written to PostgreSQL)"
	case "none":
		return "none (bare reference handler)"
	case "":
		return "unknown"
	}
	return s
}

func fmtMs(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%.2fs", v/1000)
	case v >= 10:
		return fmt.Sprintf("%.0fms", v)
	default:
		return strings.TrimSuffix(fmt.Sprintf("%.2fms", v), "")
	}
}

func dbLatencyText(d string) string {
	if d == "" {
		return ""
	}
	return " (through a proxy adding " + d + " each way)"
}

// commitsText is CommitsPerInteraction for people: "3.02", or "n/a".
func (r *Report) commitsText() string {
	if r.CommitsPerInteraction == nil {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", *r.CommitsPerInteraction)
}

// Environment is what a table of figures is measured on: figures differ
// between machines by 2–3×, so every table names them.
type Environment struct {
	// CPU is the processor's model name (from /proc/cpuinfo) and CPUs the
	// number this process may use.
	CPU  string `json:"cpu"`
	CPUs int    `json:"cpus"`
	// BotCPUs is the list the bot was pinned to ("" if not pinned).
	BotCPUs string `json:"bot_cpus,omitempty"`
	// DBLatency is the latency the proxy in front of PostgreSQL added each
	// way ("" without a proxy).
	DBLatency string `json:"db_latency,omitempty"`
	// CommitLatencyMs is the median time PostgreSQL took to commit one
	// writing transaction, measured directly before the runs (see
	// CommitLatency); zero when not measured.
	CommitLatencyMs float64 `json:"commit_latency_ms,omitempty"`
}

// WriteHeader writes the environment for people, one line.
func (e Environment) WriteHeader(w io.Writer) {
	fmt.Fprintf(w, "classbot load test on %s (%d CPUs)", e.CPU, e.CPUs)
	if e.BotCPUs != "" {
		fmt.Fprintf(w, ", bot pinned to CPUs %s", e.BotCPUs)
	}
	if e.CommitLatencyMs > 0 {
		fmt.Fprintf(w, "; PostgreSQL commit %s (median, direct)", fmtMs(e.CommitLatencyMs))
	}
	if e.DBLatency != "" {
		fmt.Fprintf(w, "; the bot reaches PostgreSQL through a proxy adding %s each way", e.DBLatency)
	} else {
		fmt.Fprintf(w, "; no added database latency")
	}
	fmt.Fprintln(w)
}

// WriteTable writes one row per report, so that every figure has its
// references beside it.
func WriteTable(w io.Writer, reports []*Report) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "run\tstore\tack p50\tack p99\tafter 3s\terrors\tfollow-ups\tposted twice\tmessages/command\tcomplete/s\tbot CPU µs/interaction\tpeak RSS MB\tother CPU s\tcommits/interaction\t")
	for _, r := range reports {
		store := r.Store
		if r.DBLatency != "" {
			store += " +" + r.DBLatency
		}
		follow := fmt.Sprintf("%d/%d", r.FollowUpsDelivered, r.FollowUpsExpected)
		dup := strconv.Itoa(r.FollowUpDuplicates)
		if r.Mode == "sync" {
			follow, dup = "n/a", "n/a"
		}
		cpu, rss := "n/a", "n/a"
		if r.BotCPUSeconds > 0 {
			cpu = fmt.Sprintf("%.0f", r.BotCPUMicrosPerCompletion)
			rss = fmt.Sprintf("%.0f", r.BotPeakRSSMB)
		}
		other := "n/a"
		if r.MachineCPUSeconds > 0 {
			other = fmt.Sprintf("%.1f", r.OtherCPUSeconds)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%.2f\t%.0f\t%s\t%s\t%s\t%s\t\n", labelOf(r), store, fmtMs(r.Ack.P50), fmtMs(r.Ack.P99),
			r.Late, r.Errors+r.Timeouts, follow, dup, r.MessagesPerCommand, r.CompletePerSecond, cpu, rss, other, r.commitsText())
	}
	_ = tw.Flush()
}

// MachineCPUs is how many CPUs the machine has (from /proc/cpuinfo), not
// how many this process may use: the load generator usually runs pinned.
func MachineCPUs() int {
	if fs, err := procfs.NewDefaultFS(); err == nil {
		if ci, err := fs.CPUInfo(); err == nil && len(ci) > 0 {
			return len(ci)
		}
	}
	return runtime.NumCPU()
}

// CPUModel is the processor's model name from /proc/cpuinfo, or GOARCH
// where there is none.
func CPUModel() string {
	if fs, err := procfs.NewDefaultFS(); err == nil {
		if ci, err := fs.CPUInfo(); err == nil && len(ci) > 0 && ci[0].ModelName != "" {
			return ci[0].ModelName
		}
	}
	return "an unknown " + runtime.GOARCH + " CPU"
}
