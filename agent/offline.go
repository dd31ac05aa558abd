package agent

import (
	"context"
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
	prompt := 0
	for _, msg := range req.Messages {
		prompt += len(strings.Fields(msg.Content))
		if msg.Role == openai.ChatMessageRoleUser {
			user = msg.Content
		}
	}
	answer := offlineAnswer(user)
	finish := openai.FinishReasonStop
	words := strings.Fields(answer)
	//lint:ignore SA1019 the offline model honours whichever cap the runner set (see withMaxTokens)
	if limit := max(req.MaxTokens, req.MaxCompletionTokens); limit > 0 && len(words) > limit {
		words = words[:limit]
		answer = strings.Join(words, " ")
		finish = openai.FinishReasonLength
	}
	completion := len(words)
	return openai.ChatCompletionResponse{
		Object: "chat.completion",
		Model:  OfflineModel,
		Choices: []openai.ChatCompletionChoice{{
			Message:      openai.ChatCompletionMessage{Role: openai.ChatMessageRoleAssistant, Content: answer},
			FinishReason: finish,
		}},
		Usage: openai.Usage{PromptTokens: prompt, CompletionTokens: completion, TotalTokens: prompt + completion},
	}, nil
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
