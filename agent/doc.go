// Package agent runs LLM agents for classbot: an [Agent] (instructions, tools,
// a turn limit) is run by a [Runner] against any OpenAI-compatible chat
// completions endpoint (OpenAI, Gemini's OpenAI endpoint, a local Ollama or
// vLLM) or, when no model is configured, against a deterministic offline model.
//
// # Prompt safety
//
// [Agent.Instructions] become the system message; the text passed to
// [Runner.Run] (anything a student typed) goes only into the user message and
// is never logged. [Agent.History] (a student's earlier questions and
// answers) is replayed between the two as user and assistant messages,
// word for word; no other role is accepted there.
//
// # One Run
//
// Run sends the conversation, executes the function tools the model asks for,
// appends their results as tool messages and asks again, until the model gives
// a final answer or [Agent.MaxTurns] round trips have been made
// ([ErrMaxTurns]). Each model call is one or more attempts:
//
//   - at most [Config.MaxConcurrency] attempts are in progress at once across
//     the Runner; waiting for a slot honours the caller's context, and a slot
//     is not held while sleeping between retries;
//   - each attempt has its own timeout, [Config.AttemptTimeout];
//   - HTTP 408, 409, 429, HTTP 5xx, transport errors and attempt timeouts
//     are retried with exponential backoff and full jitter (added to the
//     server's Retry-After when it sends one), bounded by
//     [Config.MaxAttempts] and [Config.MaxRetryWait]; other 4xx answers
//     ([IsPermanent]) and the caller's own cancellation or deadline are not
//     retried. When retries run out the error wraps [ErrUnavailable] and the
//     last underlying error.
//
// Every request caps the answer at [Config.MaxTokens] tokens; an answer cut
// there (finish reason "length") is still returned, with [Result.Truncated]
// set.
//
// The offline model and the real client sit behind the same small interface,
// so turns, usage, latency, concurrency and the turn limit behave identically
// for both.
//
// A provider's error answer reaches the caller as a [*ProviderError]: its
// status, type and code, never its message or body, which may repeat what
// the student typed.
//
// # Tools
//
// The model's tool calls are bounded: at most [MaxToolCallsPerTurn] run per
// model answer, and a tool may bound its own calls per Run ([Tool.MaxCalls]);
// a call past a bound is answered with a short result saying so. A tool's
// failure reaches the model only as [Tool.FailureText] (or an
// [*ArgumentError]'s message); the error itself goes to the log. The
// [SearchCourseTool] cuts queries to [MaxQueryRunes], shows at most
// [MaxSearchResults] passages, each with how well it matched, searches at
// most [MaxSearches] times per Run, and answers [NoAnswerText] when no
// passage reaches [MinConfidence]. Citations are quoted in what the model
// sees ([FormatPassages]), so no file name can pass for another passage.
//
// # Work budget
//
// A caller that queues work (queue mode) gives Run a budget with
// [WithWorkBudget] instead of a deadline: its clock runs only while the Run
// is not waiting for a model slot, so a backlog waiting for
// [Config.MaxConcurrency] does not spend it. [IsPermanent] tells such a
// caller which failures no retry will fix.
//
// # Embeddings
//
// An [Embedder] sends texts to the same endpoint's /embeddings, in batches
// of [EmbedBatchSize], with the same retries, limits and error handling.
//
// # Offline model contract
//
// The offline model never leaves the process. After [Config.OfflineLatency]
// (cut short by cancellation) it answers from the last user message:
//
//   - if a line starts with "Student name:", a warm two-sentence welcome that
//     uses the name after the colon, starting "Welcome to the class, <name>!";
//   - otherwise it says it is the offline model and echoes a short form of the
//     question: "You asked: …; connect a model with LLM_API_KEY or
//     LLM_BASE_URL for a real answer."
//
// When the request offers the [SearchCourseTool] tool, it first calls it once
// with the last user message as the query; given the tool's result it
// quotes the best passage of at least [MinConfidence] (at most 600 runes)
// and cites it, "From the course notes (file.md › Heading): …"; when there
// is none it answers [OfflineDeclineText], and when the search failed
// [OfflineSearchFailedText]. It calls no other tool. Its token usage
// counts words: prompt tokens are the words of all messages sent, completion
// tokens the words of the answer. An answer longer than [Config.MaxTokens]
// words is cut there, with finish reason "length".
package agent
