package agent

import (
	"context"
	"encoding/json"
	"time"
)

// Agent describes one assistant: who it is, what it may do, and how long it may go on.
// An Agent is a value; the same Agent may be run concurrently by many goroutines.
type Agent struct {
	Name         string // shown in logs
	Instructions string // the system message; never contains student text
	Model        string // empty: the Runner's default model
	Tools        []Tool
	MaxTurns     int // model round trips before Run gives up with ErrMaxTurns; 0 means 6

	// History is the conversation so far (a student's earlier questions and
	// the answers they got), sent word for word between the system message
	// and the new input. Only RoleUser and RoleAssistant messages are
	// allowed: Run fails on any other role, so nothing remembered can ever
	// become instructions. Set it on a copy of the Agent per request.
	History []Message
}

// Roles a History message may have.
const (
	RoleUser      = "user"
	RoleAssistant = "assistant"
)

// Message is one earlier message of a conversation.
type Message struct {
	Role    string // RoleUser or RoleAssistant
	Content string
}

// Tool is a function the model may call. Func receives the JSON arguments the
// model produced and returns the text handed back to the model.
//
// When Func fails, the model never sees the error: an [*ArgumentError] is
// shown as "error: " and its message (it tells the model what to fix), any
// other error is logged by the Runner and the model is told FailureText.
type Tool struct {
	Name        string
	Description string
	Parameters  json.RawMessage // JSON Schema of the arguments object
	Func        func(ctx context.Context, arguments json.RawMessage) (string, error)

	// FailureText is what the model is told when Func fails with an error
	// other than an *ArgumentError, or panics. Empty: "error: the NAME tool
	// failed; answer without it."
	FailureText string

	// MaxCalls bounds the calls of this tool in one Run; a call past it is
	// not made and the model is told LimitText. Zero: no bound of its own
	// (MaxToolCallsPerTurn still applies).
	MaxCalls int
	// LimitText is the result of a call past MaxCalls. Empty: "error: the
	// NAME tool may be called at most N times; answer from what you have."
	LimitText string
}

// ArgumentError is what a Tool's Func returns when the model's arguments
// are wrong: the model is shown its message, which must hold nothing
// internal (no error chain, no connection details).
type ArgumentError struct{ Msg string }

func (e *ArgumentError) Error() string { return e.Msg }

// Usage counts tokens over all turns of one Run.
type Usage struct {
	PromptTokens     int
	CompletionTokens int
	TotalTokens      int
}

// Result is what Run returns on success.
type Result struct {
	Output    string        // the model's final answer
	Turns     int           // model round trips
	Usage     Usage         // summed over turns
	Latency   time.Duration // wall time of Run, waits and retries included
	Retries   int           // attempts beyond the first, over all turns
	Truncated bool          // Output was cut at Config.MaxTokens (finish reason "length")
}
