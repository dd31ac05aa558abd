package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	openai "github.com/sashabaranov/go-openai"
)

// ErrMaxTurns is wrapped by Run's error when the model still asked for tools
// after the Agent's MaxTurns round trips.
var ErrMaxTurns = errors.New("agent: no final answer within the turn limit")

// model is one chat completion call: the go-openai client or the offline model.
type model interface {
	complete(ctx context.Context, req openai.ChatCompletionRequest) (openai.ChatCompletionResponse, error)
}

// Runner runs Agents against one model endpoint (or the offline model). It is
// safe for concurrent use by many goroutines; all of them share its
// concurrency limit and HTTP connections. A Runner needs no closing.
type Runner struct {
	cfg   Config
	model model
	sem   *fairSlots
}

// NewRunner returns a Runner for cfg, with defaults filled in as documented on
// [Config]. It does no I/O. With cfg.Offline it logs one warning that answers
// come from the offline model.
func NewRunner(cfg Config) *Runner {
	cfg = cfg.withDefaults()
	r := &Runner{cfg: cfg, sem: newFairSlots(cfg.MaxConcurrency, cfg.ClassRPM)}
	if cfg.Offline {
		r.model = offlineModel{latency: cfg.OfflineLatency}
		cfg.Logger.Warn("agent: no model configured, answers come from the offline model; set LLM_API_KEY or LLM_BASE_URL for a real one",
			slog.Duration("latency", cfg.OfflineLatency))
	} else {
		r.model = newOpenAIModel(cfg)
	}
	return r
}

// EstimateWait returns the place in line a new model call for class would
// take (0: a slot is free) and about how long it would wait for its slot
// (see the Runner's line: before any call has finished, the estimate goes
// by how long the calls in their slots have held them so far). Safe for
// concurrent use.
func (r *Runner) EstimateWait(class string) (place int, wait time.Duration) {
	return r.sem.Estimate(class)
}

// AdmitsWithin reports whether a new model call for class would, by the
// line's estimate, get its slot and finish within d: the rule by which a
// call waiting for a slot leaves the line early with a *LineError, so a
// caller can apply it before starting the work. place and wait are
// EstimateWait's. Safe for concurrent use.
func (r *Runner) AdmitsWithin(class string, d time.Duration) (place int, wait time.Duration, ok bool) {
	return r.sem.Admits(class, d)
}

// Offline reports whether the Runner uses the offline model.
func (r *Runner) Offline() bool { return r.cfg.Offline }

// Model returns the model used for Agents that do not name one
// ("offline" for the offline model).
func (r *Runner) Model() string { return r.cfg.Model }

// Run runs a on input and returns the model's final answer. input is the
// student's text: it is sent only as the user message (a.Instructions is the
// system message, omitted when empty) and never logged.
//
// Run may be called concurrently. It returns when the model answers, when
// ctx is done (the error then wraps ctx.Err()), or on failure: the error
// wraps ErrMaxTurns when the turn limit is reached, ErrUnavailable (and the
// last underlying error, e.g. an *openai.APIError) when retries ran out, a
// *LineError (ErrLineTooLong) when a model call left the line for a slot
// because its turn would come after ctx's deadline, or the model's
// non-retryable error such as an HTTP 400. Even on failure the
// returned Result reports the turns, usage, retries and latency so far.
// Tool errors and unknown tools do not fail Run: the model is told about them
// in the tool message (see [Tool] for what it is told).
//
// When ctx carries a work budget ([WithWorkBudget]), the budget is a deadline
// on the Run's work whose clock runs only while the Run is not waiting for a
// model slot: it starts when the first slot is held, and stops again while a
// later model call waits for one. When the budget runs out, the error wraps
// [context.DeadlineExceeded] and says so.
func (r *Runner) Run(ctx context.Context, a Agent, input string) (Result, error) {
	start := time.Now()
	var clock *budgetContext
	budget, hasBudget := WorkBudget(ctx)
	if hasBudget {
		var stopClock, cancel context.CancelFunc
		clock, stopClock = newBudgetContext(ctx, budget)
		defer stopClock()
		// Everything below sees a standard context: its Err and
		// context.Cause report the budget's end like any deadline's.
		ctx, cancel = context.WithCancel(clock)
		defer cancel()
	}
	res, err := r.run(ctx, clock, a, input)
	res.Latency = time.Since(start)
	if err != nil && clock.expired() {
		err = fmt.Errorf("work budget %s used up: %w", budget, err)
	}

	attrs := []slog.Attr{
		slog.String("agent", a.Name),
		slog.String("model", r.modelFor(a)),
		slog.Int("turns", res.Turns),
		slog.Duration("latency", res.Latency),
		slog.Int("retries", res.Retries),
		slog.Int("tokens", res.Usage.TotalTokens),
		slog.Bool("truncated", res.Truncated),
	}
	if err != nil {
		err = fmt.Errorf("run agent %q: %w", a.Name, err)
		level := slog.LevelWarn
		if errors.Is(err, ErrLineTooLong) {
			// Overload, not a failure: the caller tells the student.
			level = slog.LevelInfo
		}
		r.cfg.Logger.LogAttrs(ctx, level, "agent: run failed", append(attrs, slog.Any("error", err))...)
		return res, err
	}
	r.cfg.Logger.LogAttrs(ctx, slog.LevelDebug, "agent: run done", attrs...)
	return res, nil
}

func (r *Runner) modelFor(a Agent) string {
	if a.Model != "" && !r.cfg.Offline {
		return a.Model
	}
	return r.cfg.Model
}

func (r *Runner) run(ctx context.Context, clock *budgetContext, a Agent, input string) (Result, error) {
	var res Result
	maxTurns := a.MaxTurns
	if maxTurns <= 0 {
		maxTurns = DefaultMaxTurns
	}
	req := withMaxTokens(openai.ChatCompletionRequest{Model: r.modelFor(a)}, r.cfg.MaxTokens)
	if a.Instructions != "" {
		req.Messages = append(req.Messages, openai.ChatCompletionMessage{Role: openai.ChatMessageRoleSystem, Content: a.Instructions})
	}
	for i, m := range a.History {
		if m.Role != RoleUser && m.Role != RoleAssistant {
			return res, fmt.Errorf("history message %d has role %q: only %q and %q may be replayed", i, m.Role, RoleUser, RoleAssistant)
		}
		req.Messages = append(req.Messages, openai.ChatCompletionMessage{Role: m.Role, Content: m.Content})
	}
	req.Messages = append(req.Messages, openai.ChatCompletionMessage{Role: openai.ChatMessageRoleUser, Content: input})
	tools := make(map[string]Tool, len(a.Tools))
	for _, t := range a.Tools {
		if _, dup := tools[t.Name]; dup {
			continue
		}
		tools[t.Name] = t
		var params any = json.RawMessage(`{"type":"object","properties":{}}`)
		if len(t.Parameters) > 0 {
			params = t.Parameters
		}
		req.Tools = append(req.Tools, openai.Tool{
			Type:     openai.ToolTypeFunction,
			Function: &openai.FunctionDefinition{Name: t.Name, Description: t.Description, Parameters: params},
		})
	}

	calls := make(map[string]int) // calls made per tool in this Run
	for turn := 1; turn <= maxTurns; turn++ {
		resp, retries, err := r.call(ctx, clock, req)
		res.Retries += retries
		if err != nil {
			return res, fmt.Errorf("turn %d: %w", turn, err)
		}
		res.Turns = turn
		res.Usage.PromptTokens += resp.Usage.PromptTokens
		res.Usage.CompletionTokens += resp.Usage.CompletionTokens
		res.Usage.TotalTokens += resp.Usage.TotalTokens
		if len(resp.Choices) == 0 {
			return res, fmt.Errorf("turn %d: model %s: response has no choices", turn, req.Model)
		}
		msg := resp.Choices[0].Message
		if len(msg.ToolCalls) == 0 {
			if msg.Content == "" {
				return res, fmt.Errorf("turn %d: model %s: empty answer (finish reason %q)", turn, req.Model, resp.Choices[0].FinishReason)
			}
			// A "length" answer was cut at MaxTokens: still a valid answer.
			res.Output = msg.Content
			res.Truncated = resp.Choices[0].FinishReason == openai.FinishReasonLength
			return res, nil
		}
		if msg.Role == "" {
			msg.Role = openai.ChatMessageRoleAssistant
		}
		req.Messages = append(req.Messages, msg)
		for i, tc := range msg.ToolCalls {
			if err := ctx.Err(); err != nil {
				return res, fmt.Errorf("turn %d: %w", turn, err)
			}
			out := tooManyCallsText
			if i < MaxToolCallsPerTurn {
				out = r.callTool(ctx, a, tools, calls, tc)
			}
			req.Messages = append(req.Messages, openai.ChatCompletionMessage{
				Role:       openai.ChatMessageRoleTool,
				ToolCallID: tc.ID,
				Content:    out,
			})
		}
	}
	return res, fmt.Errorf("model %s: %d turns: %w", req.Model, maxTurns, ErrMaxTurns)
}

// withMaxTokens returns req with its answer capped at n tokens: max_tokens,
// which OpenAI, Gemini's OpenAI endpoint, Ollama and vLLM all accept, or
// max_completion_tokens for the models go-openai refuses max_tokens for
// (OpenAI's reasoning models), so that a cap never turns into an error.
func withMaxTokens(req openai.ChatCompletionRequest, n int) openai.ChatCompletionRequest {
	//lint:ignore SA1019 OpenAI deprecates max_tokens; Gemini's endpoint, Ollama and vLLM need it.
	req.MaxTokens, req.MaxCompletionTokens = n, 0
	if errors.Is(openai.NewReasoningValidator().Validate(req), openai.ErrReasoningModelMaxTokensDeprecated) {
		//lint:ignore SA1019 see above: only reasoning models get max_completion_tokens instead.
		req.MaxTokens, req.MaxCompletionTokens = 0, n
	}
	return req
}

// MaxToolCallsPerTurn bounds the tool calls run for one model answer; each
// call past it is not run, and its result says so.
const MaxToolCallsPerTurn = 4

// tooManyCallsText is the result of a tool call past MaxToolCallsPerTurn.
var tooManyCallsText = fmt.Sprintf("error: too many tool calls at once (at most %d per answer); this one was not run.", MaxToolCallsPerTurn)

// maxToolNameRunes bounds how much of an unknown tool's name is repeated.
const maxToolNameRunes = 64

// callTool runs the tool the model asked for, unless the Run has used up its
// calls (counted in calls), and returns the text for the tool message.
// Failures become text the model can read, never a Run error, and never the
// error itself: that goes to the log.
func (r *Runner) callTool(ctx context.Context, a Agent, tools map[string]Tool, calls map[string]int, tc openai.ToolCall) (out string) {
	t, ok := tools[tc.Function.Name]
	if !ok || t.Func == nil {
		r.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "agent: model called an unknown tool",
			slog.String("agent", a.Name), slog.String("tool", shorten(tc.Function.Name, maxToolNameRunes)))
		return fmt.Sprintf("error: unknown tool %q", shorten(tc.Function.Name, maxToolNameRunes))
	}
	if t.MaxCalls > 0 && calls[t.Name] >= t.MaxCalls {
		if t.LimitText != "" {
			return t.LimitText
		}
		return fmt.Sprintf("error: the %s tool may be called at most %d times; answer from what you have.", t.Name, t.MaxCalls)
	}
	calls[t.Name]++
	failure := t.FailureText
	if failure == "" {
		failure = fmt.Sprintf("error: the %s tool failed; answer without it.", t.Name)
	}
	args := json.RawMessage(tc.Function.Arguments)
	if len(args) == 0 {
		args = json.RawMessage("{}")
	}
	defer func() {
		if p := recover(); p != nil {
			r.cfg.Logger.LogAttrs(ctx, slog.LevelError, "agent: tool panicked",
				slog.String("agent", a.Name), slog.String("tool", t.Name), slog.Any("panic", p))
			out = failure
		}
	}()
	out, err := t.Func(ctx, args)
	var argErr *ArgumentError
	switch {
	case errors.As(err, &argErr):
		r.cfg.Logger.LogAttrs(ctx, slog.LevelDebug, "agent: model passed bad tool arguments",
			slog.String("agent", a.Name), slog.String("tool", t.Name))
		return "error: " + argErr.Msg
	case err != nil:
		r.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "agent: tool failed",
			slog.String("agent", a.Name), slog.String("tool", t.Name), slog.Any("error", err))
		return failure
	}
	return out
}
