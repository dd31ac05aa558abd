package agent

import (
	"context"
	"net/http"

	openai "github.com/sashabaranov/go-openai"
)

// openAIModel calls an OpenAI-compatible chat completions endpoint.
type openAIModel struct{ config openai.ClientConfig }

func newOpenAIModel(cfg Config) openAIModel {
	oc := openai.DefaultConfig(cfg.APIKey)
	if cfg.BaseURL != "" {
		oc.BaseURL = cfg.BaseURL
	}
	oc.HTTPClient = newHTTPClient(cfg)
	return openAIModel{config: oc}
}

// complete makes one chat completion call. It fails as described at [openAIModel.do].
func (m openAIModel) complete(ctx context.Context, req openai.ChatCompletionRequest) (resp openai.ChatCompletionResponse, err error) {
	err = m.do(func(c *openai.Client) (err error) {
		resp, err = c.CreateChatCompletion(ctx, req)
		return err
	})
	return resp, err
}

// do runs f, one call, with a go-openai client of its own. It fails with a
// *callError, which keeps what go-openai's errors leave out: whether the
// request was sent and the response's Retry-After header; a provider's error
// answer in it is a *ProviderError, without the message or body go-openai
// keeps. The client (a small struct sharing the HTTP client and its
// connections) is the call's own so that what the HTTP client saw belongs to
// this call alone.
func (m openAIModel) do(f func(c *openai.Client) error) error {
	doer := &recordingDoer{next: m.config.HTTPClient}
	oc := m.config
	oc.HTTPClient = doer
	if err := f(openai.NewClientWithConfig(oc)); err != nil {
		return &callError{err: withoutBody(err), sent: doer.sent, status: doer.status, retryAfter: doer.retryAfter}
	}
	return nil
}

// recordingDoer passes requests on to next and remembers what came back.
// go-openai calls Do before the call returns, from the calling goroutine; a
// recordingDoer serves one call.
type recordingDoer struct {
	next       openai.HTTPDoer
	sent       bool
	status     int
	retryAfter string
}

func (d *recordingDoer) Do(req *http.Request) (*http.Response, error) {
	d.sent = true
	resp, err := d.next.Do(req)
	if err == nil {
		resp = unstreamed(req, resp)
	}
	if resp != nil {
		d.status = resp.StatusCode
		d.retryAfter = resp.Header.Get("Retry-After")
	}
	return resp, err
}

// callError is a failed chat completion call. It wraps a *ProviderError or
// go-openai's other errors (a transport error, a broken body…) and prints as
// that error.
type callError struct {
	err        error
	sent       bool   // the request was handed to the HTTP client
	status     int    // HTTP status of the response; 0 if none
	retryAfter string // the response's Retry-After header
}

func (e *callError) Error() string { return e.err.Error() }
func (e *callError) Unwrap() error { return e.err }
