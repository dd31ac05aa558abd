package bot

import (
	"context"
	"time"
)

// Platforms classbot speaks. Adapters put one of these in Command.Platform.
const (
	PlatformSlack   = "slack"
	PlatformDiscord = "discord"
	PlatformConsole = "console"
)

// Command is one slash command as every adapter hands it to the Dispatcher.
type Command struct {
	Platform      string            // PlatformSlack, PlatformDiscord, PlatformConsole
	InteractionID string            // the platform's own id for this delivery (Slack trigger_id, Discord interaction id)
	Workspace     string            // Slack team id, Discord guild id
	Channel       string            // where the command was typed
	User          string            // the platform's user id
	Name          string            // command name without the slash: "register", "ask"
	Text          string            // free text after the command (Slack, console)
	Options       map[string]string // named options (Discord); when set they win over Text
	// Admin is the platform's own word that User manages this workspace or
	// server (Discord: the member's permissions include Manage Server).
	// Adapters set it only from the platform's signed payload, never from
	// options or text.
	Admin bool
	// CourseChannel, if set, is the channel whose course /ask answers
	// from instead of Channel's (Slack's assistant thread: the channel the
	// student is viewing); memory stays keyed by Channel. Adapters set it
	// only from the platform's signed payload, never from text.
	CourseChannel string
	ReceivedAt    time.Time // when the adapter read it; zero means "now"
}

// Reply is what classbot says back. Text is plain text: every adapter escapes
// it for its platform so that nothing in it can ping anyone or turn into markup.
type Reply struct {
	Text      string
	Ephemeral bool // only the student who typed the command sees it
	// File, if set, is delivered with the answer (Discord: an attachment;
	// Slack: a file in the user's direct message), or its Inline text is
	// added to the answer where the platform cannot take it.
	File *File
	// Feedback, if set, is the interaction id of the /ask this Reply
	// answers: adapters add "helpful" / "not helpful" buttons whose click
	// comes back as a FeedbackCommand for it.
	Feedback string
}

// File is a document attached to a Reply.
type File struct {
	Name string // file name, such as "roster.csv"
	Data []byte
	// Inline is what the answer shows instead when the file cannot be
	// delivered (Slack without the files:write scope).
	Inline string
}

// Responder delivers replies for one Command on its platform. The Dispatcher
// calls, for one Command, either Respond once, or Ack once followed by
// FollowUp once; never from two goroutines at the same time.
type Responder interface {
	// Ack acknowledges the command within the platform's deadline and shows
	// r.Text (which may be empty) while the work goes on. It must have handed
	// the acknowledgement to the platform when it returns (HTTP adapters write
	// and flush the response), so a FollowUp can never overtake it.
	Ack(ctx context.Context, r Reply) error
	// Respond gives the answer as the first and only response: sync mode,
	// help, invalid input, "busy".
	Respond(ctx context.Context, r Reply) error
	// FollowUp delivers the answer after Ack. It may be called long after the
	// platform's request has ended.
	FollowUp(ctx context.Context, r Reply) error
}
