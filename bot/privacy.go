package bot

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/classbot/classbot/store"
)

// Privacy is what /whoami and /forget need from a store; *store.Postgres
// and *store.Memory implement it. Implementations must be safe for
// concurrent use.
type Privacy interface {
	// StudentData returns what is kept about s, with at most limit of
	// their remembered questions, newest first.
	StudentData(ctx context.Context, s store.Student, limit int) (store.StudentData, error)
	// Forget deletes s's registration and remembered questions, replaces
	// s's user id in the ledger with store.ForgottenUser, drops what
	// queued commands of s's kept and their jobs, and refuses the later
	// writes of commands s typed before (store.ErrForgotten).
	Forget(ctx context.Context, s store.Student) (store.ForgetReport, error)
}

// whoamiQuestions bounds the remembered questions /whoami lists, and
// whoamiQuestionChars the length of each as shown.
const (
	whoamiQuestions     = 10
	whoamiQuestionChars = 200
)

// OutcomeForgotten: a command's write was refused because its student
// asked to be forgotten after typing it.
const OutcomeForgotten = "forgotten"

// forgottenMeanwhileText answers a registration that arrived before the
// student's /forget and was refused after it.
const forgottenMeanwhileText = "You asked me to forget you while this registration was on its way, so I didn't keep it. Type /register again if you want to join."

var whoamiSpec = Spec{
	Name:        "whoami",
	Description: "See everything classbot keeps about you (only you see it)",
	Usage:       "/whoami",
	Ack:         "Looking up what I keep about you…",
	Ephemeral:   true,
	prepare:     prepareWhoami,
}

const forgetName = "forget"

var forgetSpec = Spec{
	Name:        forgetName,
	Description: "Delete everything classbot keeps about you (asks you to confirm first)",
	Usage:       "/forget [confirm]",
	Options: []Option{
		{Name: "confirm", Description: "True deletes it all now; without it you see what would be deleted", Type: OptionBool},
	},
	Ack:       "One moment…",
	Ephemeral: true,
	prepare:   prepareForget,
}

func (b *Bot) setupPrivacy(s Store, opts Options) {
	b.privacy = opts.Privacy
	if b.privacy == nil {
		b.privacy, _ = s.(Privacy)
	}
}

func student(c Command) store.Student {
	return store.Student{Platform: c.Platform, Workspace: c.Workspace, User: c.User}
}

// forgetConfirmed reports whether c is a /forget that the student
// confirmed: Slack's and the console's "/forget confirm", Discord's
// option confirm:True.
func forgetConfirmed(c Command) bool {
	if strings.TrimPrefix(strings.ToLower(strings.TrimSpace(c.Name)), "/") != forgetName {
		return false
	}
	if v, ok := option(c, "confirm"); ok {
		return v == "true"
	}
	return strings.EqualFold(strings.TrimSpace(c.Text), "confirm")
}

// ledgerUser is the user id c's ledger row keeps: the student's, except
// for a confirmed /forget, whose row never holds it (it is written before
// the work, and finished after the answer, when the student is already
// forgotten).
func ledgerUser(c Command) string {
	if forgetConfirmed(c) {
		return store.ForgottenUser
	}
	return c.User
}

const privacyUnavailableText = "Sorry, this classbot cannot look up or delete what it keeps about you. Please ask your teacher."

func prepareWhoami(b *Bot, c Command) (job, error) {
	s := student(c)
	return func(ctx context.Context, _ bool, tr *Trace) Reply {
		if b.privacy == nil {
			tr.Outcome = OutcomeOK
			return Reply{Text: privacyUnavailableText, Ephemeral: true}
		}
		start := time.Now()
		sctx, cancel := context.WithTimeout(ctx, b.storeTimeout)
		d, err := b.privacy.StudentData(sctx, s, whoamiQuestions)
		cancel()
		tr.Stored = time.Now()
		tr.Store = tr.Stored.Sub(start)
		if err != nil {
			tr.fail(OutcomeStoreError, fmt.Errorf("whoami: %w", err))
			return Reply{Text: "Sorry, I couldn't look that up just now. Please try again in a minute.", Ephemeral: true}
		}
		tr.Outcome = OutcomeOK
		return Reply{Text: whoamiText(d, b.memoryTTL, c.Platform), Ephemeral: true}
	}, nil
}

// whoamiText lists d for its student: what classbot keeps, and how to
// delete it.
func whoamiText(d store.StudentData, memoryTTL time.Duration, platform string) string {
	var w strings.Builder
	w.WriteString("Here is everything classbot keeps about you in this workspace (only you can see this):\n")
	if r := d.Registration; r != nil {
		fmt.Fprintf(&w, "• Registration: %s (%s), registered %s", r.Name, r.Email, when(r.CreatedAt))
		if r.UpdatedAt.Sub(r.CreatedAt) > time.Second {
			fmt.Fprintf(&w, ", last updated %s", when(r.UpdatedAt))
		}
		w.WriteString(".\n")
	} else {
		w.WriteString("• Registration: none (you have not registered here).\n")
	}
	switch d.AskTurns {
	case 0:
		w.WriteString("• Remembered /ask questions: none.\n")
	default:
		fmt.Fprintf(&w, "• Remembered /ask questions and their answers: %d (each kept for %s, so I can follow up on them)", d.AskTurns, memoryTTL)
		if d.AskTurns > len(d.Questions) {
			fmt.Fprintf(&w, "; the newest %d", len(d.Questions))
		}
		w.WriteString(":\n")
		for _, t := range d.Questions {
			fmt.Fprintf(&w, "   – %s: %s\n", when(t.At), clip(t.Question, whoamiQuestionChars))
		}
	}
	fmt.Fprintf(&w, "• Commands you typed, in classbot's log: %d (when, which command and how it went; not what you typed).\n", d.Interactions)
	w.WriteString("To delete all of this, " + confirmHint(platform) + ".")
	return w.String()
}

func when(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

// clip shortens s to at most n characters, marking the cut.
func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// confirmHint says how to confirm /forget on platform.
func confirmHint(platform string) string {
	if platform == PlatformDiscord {
		return "use /forget with the option confirm set to True"
	}
	return "type /forget confirm"
}

func prepareForget(b *Bot, c Command) (job, error) {
	s := student(c)
	confirmed := forgetConfirmed(c)
	return func(ctx context.Context, _ bool, tr *Trace) Reply {
		if b.privacy == nil {
			tr.Outcome = OutcomeOK
			return Reply{Text: privacyUnavailableText, Ephemeral: true}
		}
		start := time.Now()
		sctx, cancel := context.WithTimeout(ctx, b.storeTimeout)
		defer cancel()
		defer func() {
			tr.Stored = time.Now()
			tr.Store = tr.Stored.Sub(start)
		}()
		if !confirmed {
			d, err := b.privacy.StudentData(sctx, s, 0)
			if err != nil {
				tr.fail(OutcomeStoreError, fmt.Errorf("forget (preview): %w", err))
				return Reply{Text: "Sorry, I couldn't look that up just now. Please try again in a minute.", Ephemeral: true}
			}
			tr.Outcome = OutcomeOK
			return Reply{Text: forgetPreviewText(d, c.Platform), Ephemeral: true}
		}
		rep, err := b.privacy.Forget(sctx, s)
		if err != nil {
			tr.fail(OutcomeStoreError, fmt.Errorf("forget: %w", err))
			return Reply{Text: "Sorry, I couldn't delete your data just now; nothing was deleted. Please try again in a minute.", Ephemeral: true}
		}
		tr.Outcome = OutcomeOK
		return Reply{Text: forgetDoneText(rep), Ephemeral: true}
	}, nil
}

// forgetPreviewText says what a confirmed /forget would delete, and how to
// confirm it.
func forgetPreviewText(d store.StudentData, platform string) string {
	var w strings.Builder
	w.WriteString("/forget deletes everything classbot keeps about you in this workspace:\n")
	if d.Registration != nil {
		w.WriteString("• your registration (your name and email): you leave the class roster;\n")
	} else {
		w.WriteString("• your registration: you have none here;\n")
	}
	fmt.Fprintf(&w, "• your %d remembered /ask questions and their answers;\n", d.AskTurns)
	fmt.Fprintf(&w, "• your user id in the %d commands in classbot's log (the log keeps only when and which command, as \"forgotten\");\n", d.Interactions)
	w.WriteString("• any command of yours still waiting in the queue, and its answer.\n")
	w.WriteString("Nothing has been deleted yet. To delete it all, " + confirmHint(platform) + ". You can /register again afterwards.")
	return w.String()
}

// forgetDoneText says what /forget deleted.
func forgetDoneText(r store.ForgetReport) string {
	reg := "you had no registration here"
	if r.Registrations > 0 {
		reg = "your registration (name and email)"
	}
	return fmt.Sprintf("Done: classbot no longer keeps anything about you in this workspace. I deleted %s, %d remembered /ask questions and %d queued commands, and removed your user id from %d commands in the log. You can /register again at any time.",
		reg, r.AskTurns, r.Jobs, r.Interactions)
}
