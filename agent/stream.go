package agent

import (
	"context"
	"errors"

	"io"
	"strings"

	openai "github.com/sashabaranov/go-openai"
)

// errStreamCut is a streamed answer that ended without a finish reason: the
// connection closed mid-answer. It is retried like a broken body.
var errStreamCut = errors.New("the model's stream ended before the answer was finished")

// streamModel is a model that can stream its answer: onText is called with
// the answer's text so far, from the calling goroutine, while it arrives.
type streamModel interface {
	stream(ctx context.Context, req openai.ChatCompletionRequest, onText func(text string)) (openai.ChatCompletionResponse, error)
}

// RunStream is Run with the answer shown while the model writes it: onText
// is called, from RunStream's goroutine, with the text of the answer so far
// each time more of it arrives. The texts of one model turn grow by
// appending; a turn that turns out to call tools, or a retried call, starts
// again from a shorter text, so onText must show the latest text whole
// rather than append. Text is passed on only while the turn has asked for
// no tool. The Result's Output is the final answer, the same as Run's;
// onText may not have been called with all of it (the offline model calls
// it once, with the whole answer). onText must not block for long: the
// model's stream waits for it.
func (r *Runner) RunStream(ctx context.Context, a Agent, input string, onText func(text string)) (Result, error) {
	if onText == nil {
		return r.Run(ctx, a, input)
	}
	return r.Run(withOnText(ctx, onText), a, input)
}

type onTextKey struct{}

func withOnText(ctx context.Context, f func(string)) context.Context {
	return context.WithValue(ctx, onTextKey{}, f)
}

func onTextFrom(ctx context.Context) func(string) {
	f, _ := ctx.Value(onTextKey{}).(func(string))
	return f
}

// stream makes one streamed chat completion call and gathers the chunks
// into the response a non-streamed call returns: the content, the tool
// calls (whose names and arguments arrive in pieces, keyed by index), the
// finish reason and the usage. It fails as described at [openAIModel.do],
// and with errStreamCut when the stream ends before a finish reason.
func (m openAIModel) stream(ctx context.Context, req openai.ChatCompletionRequest, onText func(string)) (resp openai.ChatCompletionResponse, err error) {
	req.Stream = true
	req.StreamOptions = &openai.StreamOptions{IncludeUsage: true}
	err = m.do(func(c *openai.Client) error {
		s, err := c.CreateChatCompletionStream(ctx, req)
		if err != nil {
			return err
		}
		defer s.Close()
		resp, err = gather(s, onText)
		return err
	})
	return resp, err
}

// chunkSource is what gather reads: a go-openai stream.
type chunkSource interface {
	Recv() (openai.ChatCompletionStreamResponse, error)
}

func gather(s chunkSource, onText func(string)) (openai.ChatCompletionResponse, error) {
	var (
		resp    openai.ChatCompletionResponse
		content strings.Builder
		calls   []openai.ToolCall
		finish  openai.FinishReason
	)
	for {
		chunk, err := s.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return resp, err
		}
		resp.ID, resp.Model = chunk.ID, chunk.Model
		if chunk.Usage != nil {
			resp.Usage = *chunk.Usage
		}
		for _, ch := range chunk.Choices {
			if ch.Index != 0 {
				continue
			}
			for _, d := range ch.Delta.ToolCalls {
				i := len(calls)
				if d.Index != nil {
					i = *d.Index
				} else if d.ID == "" && i > 0 {
					i-- // no index and no id: more of the last call
				}
				for len(calls) <= i {
					calls = append(calls, openai.ToolCall{Type: openai.ToolTypeFunction})
				}
				c := &calls[i]
				if d.ID != "" {
					c.ID = d.ID
				}
				if d.Type != "" {
					c.Type = d.Type
				}
				c.Function.Name += d.Function.Name
				c.Function.Arguments += d.Function.Arguments
			}
			if ch.Delta.Content != "" {
				content.WriteString(ch.Delta.Content)
				if len(calls) == 0 && onText != nil {
					onText(content.String())
				}
			}
			if ch.FinishReason != "" {
				finish = ch.FinishReason
			}
		}
	}
	if finish == "" {
		return resp, errStreamCut
	}
	resp.Object = "chat.completion"
	resp.Choices = []openai.ChatCompletionChoice{{
		Message: openai.ChatCompletionMessage{
			Role:      openai.ChatMessageRoleAssistant,
			Content:   content.String(),
			ToolCalls: calls,
		},
		FinishReason: finish,
	}}
	return resp, nil
}

// streamOrComplete makes one call: streamed when the Run has an onText and
// the model can stream, else whole (and then onText, if any, sees the
// final answer once).
func (r *Runner) streamOrComplete(ctx context.Context, req openai.ChatCompletionRequest) (openai.ChatCompletionResponse, error) {
	onText := onTextFrom(ctx)
	if onText == nil {
		return r.model.complete(ctx, req)
	}
	if sm, ok := r.model.(streamModel); ok {
		return sm.stream(ctx, req, onText)
	}
	resp, err := r.model.complete(ctx, req)
	if err == nil && len(resp.Choices) > 0 && len(resp.Choices[0].Message.ToolCalls) == 0 && resp.Choices[0].Message.Content != "" {
		onText(resp.Choices[0].Message.Content)
	}
	return resp, err
}

var _ streamModel = openAIModel{}
