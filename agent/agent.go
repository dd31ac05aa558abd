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
type Tool struct {
	Name        string
	Description string
	Parameters  json.RawMessage // JSON Schema of the arguments object
	Func        func(ctx context.Context, arguments json.RawMessage) (string, error)
}

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
