package bot

import (
	"context"
	"fmt"
)

// FeedbackCommand is the Command.Name an adapter gives a click on the
// "helpful" / "not helpful" buttons of an /ask answer. It is not a slash
// command: no platform registers it and help does not list it. Its
// Options are FeedbackAnswer and FeedbackHelpful.
const FeedbackCommand = "feedback"

// Options of a FeedbackCommand.
const (
	FeedbackAnswer  = "answer"  // the interaction id of the /ask the answer was for
	FeedbackHelpful = "helpful" // "true" or "false"
)

// Feedback stores clicks on answers; *store.Postgres and *store.Memory
// implement it. A click is keyed by the question's interaction, never by
// who clicked.
type Feedback interface {
	RecordFeedback(ctx context.Context, platform, interaction string, helpful bool) error
}

// feedbackSpec answers a click, to the student alone.
var feedbackSpec = Spec{
	Name:      FeedbackCommand,
	Ephemeral: true,
	prepare:   prepareFeedback,
}

const (
	feedbackThanksText = "Thanks! I'll tell the teacher this answer helped."
	feedbackSorryText  = "Thanks for telling me. The teacher will see that this answer didn't help, and can improve the notes."
	feedbackFailedText = "Sorry, I couldn't save your feedback just now. Please try again in a minute."
)

func prepareFeedback(b *Bot, c Command) (job, error) {
	answer := c.Options[FeedbackAnswer]
	helpful := c.Options[FeedbackHelpful] == "true"
	if answer == "" || len(answer) > 256 || (!helpful && c.Options[FeedbackHelpful] != "false") {
		return nil, &UserError{Msg: "That button doesn't work any more."}
	}
	return func(ctx context.Context, _ bool, tr *Trace) Reply {
		if b.feedback == nil {
			tr.Outcome = OutcomeOK
			return Reply{Text: "Thanks! (Feedback isn't kept on this server.)", Ephemeral: true}
		}
		sctx, cancel := context.WithTimeout(ctx, b.storeTimeout)
		defer cancel()
		if err := b.feedback.RecordFeedback(sctx, c.Platform, answer, helpful); err != nil {
			tr.fail(OutcomeStoreError, fmt.Errorf("record feedback: %w", err))
			return Reply{Text: feedbackFailedText, Ephemeral: true}
		}
		tr.Outcome = OutcomeOK
		if helpful {
			return Reply{Text: feedbackThanksText, Ephemeral: true}
		}
		return Reply{Text: feedbackSorryText, Ephemeral: true}
	}, nil
}

func (b *Bot) setupFeedback(s Store, opts Options) {
	b.feedback = opts.Feedback
	if b.feedback == nil {
		b.feedback, _ = s.(Feedback)
	}
}
