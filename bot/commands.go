package bot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/classbot/classbot/agent"
	"github.com/classbot/classbot/store"
)

// Spec describes one slash command: its name, its options, what the student
// sees while it runs, and how it is prepared. Adapters read Commands to
// register the commands with their platform.
type Spec struct {
	Name        string
	Description string
	Usage       string
	Options     []Option
	// Ack is shown at once in async mode while the work goes on.
	Ack string
	// Ephemeral replies are seen only by the student (registration shows the email).
	Ephemeral bool
	// Teacher commands are refused to students (checked on the server);
	// Discord also hides them from members without Manage Server.
	Teacher bool
	// prepare validates the command and returns the job that does the work,
	// or a *UserError for the student. It does no I/O.
	prepare func(b *Bot, c Command) (job, error)
}

// Option is one named option of a command (Discord shows them as fields).
type Option struct {
	Name        string
	Description string
	Required    bool
	MaxLength   int
	Type        OptionType
}

// OptionType is the kind of value an option takes; the zero value is text.
type OptionType uint8

const (
	OptionString OptionType = iota // text, as typed
	OptionBool                     // a yes/no choice: "true" or "false" in Command.Options
)

// job is the work of one prepared command. concurrent says whether its store
// and agent calls may overlap (async) or must run one after the other (sync).
// It records timings and the outcome in tr and returns the answer.
type job func(ctx context.Context, concurrent bool, tr *Trace) Reply

// Commands is classbot's whole command surface, in the order help lists it.
var Commands = []Spec{
	{
		Name:        "register",
		Description: "Join the class: your name and email",
		Usage:       "/register <your name> <your email>",
		Options: []Option{
			{Name: "name", Description: "Your name, as the teacher should see it", Required: true, MaxLength: MaxNameLen},
			{Name: "email", Description: "Your email address (only you and the teacher see it)", Required: true, MaxLength: MaxEmailLen},
		},
		Ack:       "Registering you…",
		Ephemeral: true,
		prepare:   prepareRegister,
	},
	{
		Name:        "ask",
		Description: "Ask the teaching assistant a question about the course",
		Usage:       "/ask <your question>",
		Options: []Option{
			{Name: "question", Description: "What would you like to know?", Required: true, MaxLength: MaxQuestionLen},
		},
		Ack:     "Thinking…",
		prepare: prepareAsk,
	},
	{
		Name:        "course",
		Description: "Which course notes /ask answers from here (teachers: switch them)",
		Usage:       "/course  (teachers: /course use NAME, /course reindex)",
		Options: []Option{
			{Name: "use", Description: "Teachers: the course this channel should answer from", MaxLength: store.MaxCourseNameBytes},
			{Name: "reindex", Description: "Teachers: type yes to re-read this course's notes from its folder now", MaxLength: 10},
		},
		Ack:       "Looking up the course…",
		Ephemeral: true,
		prepare:   prepareCourse,
	},
	{
		Name:        "roster",
		Description: "Teachers: who registered, by channel, and the whole list as CSV",
		Usage:       "/roster",
		Ack:         "Reading the roster…",
		Ephemeral:   true,
		Teacher:     true,
		prepare:     prepareRoster,
	},
	whoamiSpec,
	forgetSpec,
}

// lookup returns the Spec named name, or nil.
func lookup(name string) *Spec {
	name = strings.TrimPrefix(strings.ToLower(strings.TrimSpace(name)), "/")
	for i := range Commands {
		if Commands[i].Name == name {
			return &Commands[i]
		}
	}
	if name == FeedbackCommand {
		return &feedbackSpec
	}
	return nil
}

// HelpText lists the commands, for unknown commands and empty input.
func HelpText() string {
	var b strings.Builder
	b.WriteString("Hi! I'm the class assistant. Here is what I can do:\n")
	for _, s := range Commands {
		fmt.Fprintf(&b, "• `%s`: %s\n", s.Usage, s.Description)
	}
	return strings.TrimRight(b.String(), "\n")
}

// Replies the student sees when something goes wrong. They are kind, short,
// and never carry internal details.
const (
	busyText        = "Lots of students are typing right now, so I'm busy. Please try again in a minute."
	restartingText  = "classbot is restarting. Please try again in a minute."
	tooLongText     = "Sorry, that took too long. Please try again."
	interruptedText = "Sorry, classbot had to stop before finishing. Please try again in a minute."
	internalText    = "Sorry, something went wrong on my side. Please try again in a minute."
	storeFailedText = "Sorry, I couldn't save your registration just now. Nothing was changed; please try again in a minute."
	// storeUnconfirmedText is for a write whose outcome is unknown: the
	// database did not answer in time, and may still commit it.
	storeUnconfirmedText = "Sorry, the database is slow to answer, so I couldn't confirm your registration. Registering again is safe: please try again in a minute."
	askFailedText        = "Sorry, I couldn't come up with an answer just now. Please try again in a minute."
)

// Outcomes recorded in the ledger, logs and metrics.
const (
	OutcomeOK          = "ok"
	OutcomeHelp        = "help"
	OutcomeInvalid     = "invalid"
	OutcomeBusy        = "busy"
	OutcomeDuplicate   = "duplicate"
	OutcomeRestarting  = "restarting"
	OutcomeStoreError  = "store_error"
	OutcomeAgentError  = "agent_error"
	OutcomeNoWelcome   = "no_welcome" // registered; the welcome's turn with the model would have come too late (overload)
	OutcomeTimeout     = "timeout"
	OutcomeInterrupted = "interrupted"
	OutcomePanic       = "panic"
	OutcomeError       = "error"
	OutcomeAckFailed   = store.OutcomeAckFailed // the first response never reached the platform
)

func option(c Command, name string) (string, bool) {
	v, ok := c.Options[name]
	return v, ok
}

func prepareRegister(b *Bot, c Command) (job, error) {
	name, hasName := option(c, "name")
	email, hasEmail := option(c, "email")
	if !hasName && !hasEmail {
		var err error
		if name, email, err = ParseRegisterText(c.Text); err != nil {
			return nil, err
		}
	}
	name, err := ValidateName(name)
	if err != nil {
		return nil, err
	}
	if email, err = ValidateEmail(email); err != nil {
		return nil, err
	}
	reg := store.Registration{
		Platform: c.Platform, Workspace: c.Workspace, User: c.User, Channel: c.Channel,
		Name: name, Email: email, Via: c.InteractionID,
	}
	return func(ctx context.Context, concurrent bool, tr *Trace) Reply {
		return b.register(ctx, concurrent, reg, tr)
	}, nil
}

// register stores the student and asks the agent for a welcome: one after the
// other in sync mode, at the same time in async mode. A failed store write
// cancels the welcome (nobody to welcome); a failed welcome keeps the
// registration and says so.
func (b *Bot) register(ctx context.Context, concurrent bool, reg store.Registration, tr *Trace) Reply {
	var (
		created  bool
		storeErr error
		welcome  string
		agentErr error
	)
	doStore := func(ctx context.Context) error {
		start := time.Now()
		// Bounded on its own: a hung database must not hold the student
		// for the whole command timeout before they hear it didn't work.
		sctx, cancel := context.WithTimeout(ctx, b.storeTimeout)
		defer cancel()
		created, storeErr = b.store.UpsertRegistration(sctx, reg)
		if storeErr == nil && !created && tr.Attempt > 1 {
			created = b.createdBy(sctx, reg, tr.Received)
		}
		tr.Stored = time.Now()
		tr.Store = tr.Stored.Sub(start)
		tr.Saved = storeErr == nil
		return storeErr
	}
	doAgent := func(ctx context.Context) {
		start := time.Now()
		r, err := b.agent.Run(ctx, b.welcome, "A new student just registered for the course.\nStudent name: "+reg.Name)
		tr.AgentDone = time.Now()
		tr.Agent = tr.AgentDone.Sub(start)
		welcome, agentErr = strings.TrimSpace(r.Output), err
	}

	if concurrent {
		g, gctx := errgroup.WithContext(ctx)
		g.Go(func() error { return doStore(gctx) })
		g.Go(func() error { doAgent(gctx); return nil })
		_ = g.Wait() // storeErr and agentErr carry the results
	} else if doStore(ctx) == nil {
		doAgent(ctx)
	}

	if errors.Is(storeErr, store.ErrForgotten) {
		tr.fail(OutcomeForgotten, fmt.Errorf("register student: %w", storeErr))
		return Reply{Text: forgottenMeanwhileText, Ephemeral: true}
	}
	if storeErr != nil {
		tr.fail(OutcomeStoreError, fmt.Errorf("register student: %w", storeErr))
		if errors.Is(storeErr, context.DeadlineExceeded) || errors.Is(storeErr, context.Canceled) || errors.Is(storeErr, store.ErrUncertain) {
			return Reply{Text: storeUnconfirmedText, Ephemeral: true}
		}
		return Reply{Text: storeFailedText, Ephemeral: true}
	}
	head := fmt.Sprintf("You're registered, %s (%s).", reg.Name, reg.Email)
	if !created {
		head = fmt.Sprintf("Welcome back! I updated your registration: %s (%s).", reg.Name, reg.Email)
	}
	var le *agent.LineError
	if errors.As(agentErr, &le) && !tr.queued {
		// Overload, not a failure: the welcome's turn with the model would
		// have come too late, and the registration is what counts.
		tr.Outcome = OutcomeNoWelcome
		return Reply{Text: head + " (Lots of students are registering right now, so no personal welcome this time; your registration is saved.)", Ephemeral: true}
	}
	if agentErr != nil || welcome == "" {
		if agentErr == nil {
			agentErr = errors.New("empty answer")
		}
		tr.fail(OutcomeAgentError, fmt.Errorf("welcome student: %w", agentErr))
		return Reply{Text: head + " (The assistant couldn't write your welcome just now, but your registration is saved.)", Ephemeral: true}
	}
	tr.Outcome = OutcomeOK
	return Reply{Text: head + "\n\n" + welcome, Ephemeral: true}
}

func prepareAsk(b *Bot, c Command) (job, error) {
	q, ok := option(c, "question")
	if !ok {
		q = c.Text
	}
	q, err := ValidateQuestion(q)
	if err != nil {
		return nil, err
	}
	key := store.AskKey{Platform: c.Platform, Workspace: c.Workspace, Channel: c.Channel, User: c.User}
	course := key
	if c.CourseChannel != "" {
		course.Channel = c.CourseChannel
	}
	return func(ctx context.Context, _ bool, tr *Trace) Reply {
		return b.ask(ctx, key, b.classCourse(course), c.InteractionID, q, tr)
	}, nil
}

// ask has the agent answer a question, with the student's earlier turns in
// this channel (Options.Memory) and the search tool over the notes of
// course (Options.Notes). The new turn is remembered before the answer is
// returned for delivery. Memory and search failures do not fail the
// question; tr.Store is the time spent in the database.
func (b *Bot) ask(ctx context.Context, key store.AskKey, course courseFunc, via, q string, tr *Trace) Reply {
	var dbTime time.Duration
	recallStart := time.Now()
	turns := b.recall(ctx, key)
	dbTime += time.Since(recallStart)

	start := time.Now()
	r, err := b.runAnswer(ctx, b.askAgent(course, turns, &dbTime), q)
	tr.AgentDone = time.Now()
	tr.Agent = tr.AgentDone.Sub(start)
	answer := strings.TrimSpace(r.Output)
	if err == nil && answer == "" {
		err = errors.New("empty answer")
	}
	if err != nil {
		tr.Store = dbTime
		if reply, busy := lineTooLong(err, tr); busy {
			return reply
		}
		tr.fail(OutcomeAgentError, fmt.Errorf("answer question: %w", err))
		return Reply{Text: askFailedText, Ephemeral: true}
	}
	saveStart := time.Now()
	if tr.queued {
		// Queue mode stores the turn once the answer is recorded.
		tr.remember = func(ctx context.Context) bool { return b.remember(ctx, key, via, q, answer) }
	} else if b.remember(ctx, key, via, q, answer) {
		tr.Stored = time.Now()
	}
	dbTime += time.Since(saveStart)
	tr.Store = dbTime
	tr.Outcome = OutcomeOK
	reply := Reply{Text: answer}
	if b.feedback != nil {
		reply.Feedback = via
	}
	return reply
}
