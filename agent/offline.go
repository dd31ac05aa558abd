package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	openai "github.com/sashabaranov/go-openai"
)

// offlineModel answers without a network, deterministically from the last
// user message; the contract is in the package documentation.
type offlineModel struct{ latency time.Duration }

const echoLimit = 80 // runes of the question echoed back

func (m offlineModel) complete(ctx context.Context, req openai.ChatCompletionRequest) (openai.ChatCompletionResponse, error) {
	if err := sleep(ctx, m.latency); err != nil {
		return openai.ChatCompletionResponse{}, fmt.Errorf("offline model: %w", err)
	}
	var user string
	var results []string // tool results after the last user message
	prompt := 0
	for _, msg := range req.Messages {
		prompt += len(strings.Fields(msg.Content))
		switch msg.Role {
		case openai.ChatMessageRoleUser:
			user, results = msg.Content, nil
		case openai.ChatMessageRoleTool:
			results = append(results, msg.Content)
		}
	}
	if results == nil && offersTool(req, SearchCourseTool) {
		return searchCall(user, prompt), nil
	}
	answer := offlineAnswer(user)
	if results != nil {
		answer = offlineCourseAnswer(results)
	}
	finish := openai.FinishReasonStop
	words := strings.Fields(answer)
	//lint:ignore SA1019 the offline model honours whichever cap the runner set (see withMaxTokens)
	if limit := max(req.MaxTokens, req.MaxCompletionTokens); limit > 0 && len(words) > limit {
		words = words[:limit]
		answer = strings.Join(words, " ")
		finish = openai.FinishReasonLength
	}
	return offlineResponse(openai.ChatCompletionMessage{Role: openai.ChatMessageRoleAssistant, Content: answer},
		finish, prompt, len(words)), nil
}

// offlineResponse wraps the offline model's one message in a chat
// completion response, with its token counts.
func offlineResponse(msg openai.ChatCompletionMessage, finish openai.FinishReason, prompt, completion int) openai.ChatCompletionResponse {
	return openai.ChatCompletionResponse{
		Object:  "chat.completion",
		Model:   OfflineModel,
		Choices: []openai.ChatCompletionChoice{{Message: msg, FinishReason: finish}},
		Usage:   openai.Usage{PromptTokens: prompt, CompletionTokens: completion, TotalTokens: prompt + completion},
	}
}

// offersTool reports whether req offers the model the tool called name.
func offersTool(req openai.ChatCompletionRequest, name string) bool {
	for _, t := range req.Tools {
		if t.Function != nil && t.Function.Name == name {
			return true
		}
	}
	return false
}

// searchCall is the offline model asking search_course for the question.
func searchCall(question string, prompt int) openai.ChatCompletionResponse {
	args, _ := json.Marshal(map[string]string{"query": question})
	return offlineResponse(openai.ChatCompletionMessage{Role: openai.ChatMessageRoleAssistant, ToolCalls: []openai.ToolCall{{
		ID: "offline-call-1", Type: openai.ToolTypeFunction,
		Function: openai.FunctionCall{Name: SearchCourseTool, Arguments: string(args)},
	}}}, openai.FinishReasonToolCalls, prompt, len(strings.Fields(question)))
}

// quoteLimit is how many runes of the best section the offline model quotes.
const quoteLimit = 600

// OfflineDeclineText is the offline model's answer when the course notes
// have nothing on the question: no passage at least MinConfidence.
const OfflineDeclineText = "The course notes don't say anything about that, so I can't answer it. " +
	"Please ask your teacher."

// OfflineSearchFailedText is the offline model's answer when the search of
// the course notes failed.
const OfflineSearchFailedText = "I can't search the course notes right now. " +
	"Please try again in a moment, or ask your teacher."

// offlineCourseAnswer quotes the best passage of the search results that is
// at least MinConfidence and cites it; without one it declines.
func offlineCourseAnswer(results []string) string {
	failed := false
	for _, r := range results {
		if r == SearchFailedText {
			failed = true
			continue
		}
		for _, best := range ParsePassages(r) {
			if best.Confidence < MinConfidence {
				continue
			}
			text := best.Text
			if r := []rune(text); len(r) > quoteLimit {
				text = strings.TrimSpace(string(r[:quoteLimit])) + "…"
			}
			return fmt.Sprintf("From the course notes (%s):\n\n%s\n\n(I am the offline model: I quote the best matching section. "+
				"Connect a model with LLM_API_KEY or LLM_BASE_URL for a written answer.)", best.Citation, text)
		}
	}
	if failed {
		return OfflineSearchFailedText
	}
	return OfflineDeclineText
}

func offlineAnswer(user string) string {
	for line := range strings.Lines(user) {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "Student name:"); ok {
			if name := strings.Join(strings.Fields(rest), " "); name != "" {
				return fmt.Sprintf("Welcome to the class, %s! We're glad to have you here. "+
					"Whenever a question comes up, just ask with /ask and I'll do my best to help.", name)
			}
		}
	}
	return fmt.Sprintf("I am the offline model, so I cannot really answer yet. "+
		"You asked: %s; connect a model with LLM_API_KEY or LLM_BASE_URL for a real answer.", shorten(user, echoLimit))
}

// shorten collapses whitespace and cuts s to at most n runes, marking a cut with "…".
func shorten(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return strings.TrimSpace(string(r[:n])) + "…"
}

// sleep waits for d or until ctx is done, whichever comes first.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
