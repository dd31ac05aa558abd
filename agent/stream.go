package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
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
// no tool, and only while more is to come: the chunk that ends the answer,
// an answer that comes in one piece (a provider that does not stream) and
// the offline model's answers show nothing before RunStream returns. The
// Result's Output is the final answer, the same as Run's; onText has seen
// at most a prefix of it. onText must not block for long: the model's
// stream waits for it.
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
				// The chunk that ends the answer shows nothing more: the
				// whole answer follows at once.
				if len(calls) == 0 && onText != nil && ch.FinishReason == "" {
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
// the model can stream, else whole.
func (r *Runner) streamOrComplete(ctx context.Context, req openai.ChatCompletionRequest) (openai.ChatCompletionResponse, error) {
	onText := onTextFrom(ctx)
	if sm, ok := r.model.(streamModel); ok && onText != nil {
		return sm.stream(ctx, req, onText)
	}
	return r.model.complete(ctx, req)
}

var _ streamModel = openAIModel{}

// maxUnstreamedBytes bounds a whole answer read by unstreamed.
const maxUnstreamedBytes = 8 << 20

// unstreamed turns resp, a provider's one-piece JSON answer to a request
// for a stream (some OpenAI-compatible servers ignore "stream": true),
// into the stream of one chunk that go-openai reads: the message's
// content and tool calls as one delta, its finish reason, its usage, then
// [DONE]. Any other response is returned as it is.
func unstreamed(req *http.Request, resp *http.Response) *http.Response {
	if resp == nil || resp.StatusCode != http.StatusOK ||
		!strings.Contains(req.Header.Get("Accept"), "text/event-stream") ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		return resp
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxUnstreamedBytes))
	resp.Body.Close()
	var whole openai.ChatCompletionResponse
	if err == nil {
		err = json.Unmarshal(body, &whole)
	}
	var sse bytes.Buffer
	if err == nil && len(whole.Choices) > 0 {
		msg := whole.Choices[0].Message
		for i := range msg.ToolCalls {
			msg.ToolCalls[i].Index = &i
		}
		chunk := openai.ChatCompletionStreamResponse{
			ID: whole.ID, Object: "chat.completion.chunk", Model: whole.Model, Usage: &whole.Usage,
			Choices: []openai.ChatCompletionStreamChoice{{
				Delta:        openai.ChatCompletionStreamChoiceDelta{Role: msg.Role, Content: msg.Content, ToolCalls: msg.ToolCalls},
				FinishReason: whole.Choices[0].FinishReason,
			}},
		}
		if b, err := json.Marshal(chunk); err == nil {
			fmt.Fprintf(&sse, "data: %s\n\ndata: [DONE]\n\n", b)
		}
	}
	// Anything unreadable becomes an empty stream: the call fails as cut.
	resp.Body = io.NopCloser(&sse)
	resp.ContentLength = int64(sse.Len())
	resp.Header.Set("Content-Type", "text/event-stream")
	return resp
}
