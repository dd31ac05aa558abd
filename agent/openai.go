package agent

import (
	"context"

	openai "github.com/sashabaranov/go-openai"
)

// openAIModel calls an OpenAI-compatible chat completions endpoint.
type openAIModel struct{ client *openai.Client }

func newOpenAIModel(cfg Config) openAIModel {
	oc := openai.DefaultConfig(cfg.APIKey)
	if cfg.BaseURL != "" {
		oc.BaseURL = cfg.BaseURL
	}
	oc.HTTPClient = newHTTPClient(cfg)
	return openAIModel{client: openai.NewClientWithConfig(oc)}
}

func (m openAIModel) complete(ctx context.Context, req openai.ChatCompletionRequest) (openai.ChatCompletionResponse, error) {
	return m.client.CreateChatCompletion(ctx, req)
}
