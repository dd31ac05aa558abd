package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	openai "github.com/sashabaranov/go-openai"
	"golang.org/x/sync/semaphore"
)

// EmbedBatchSize is how many texts one embeddings request carries at most.
const EmbedBatchSize = 64

// Embedder turns texts into vectors through the /embeddings endpoint of the
// same OpenAI-compatible API a [Runner] uses (OpenAI, Gemini's OpenAI
// endpoint, Ollama, vLLM). It is safe for concurrent use; its requests share
// its own limit of Config.MaxConcurrency at once, and are retried, timed out
// and sanitized exactly like the Runner's chat calls (see the package
// documentation). The texts are never logged. An Embedder needs no closing.
type Embedder struct {
	cfg   Config
	model string
	api   openAIModel
	sem   *semaphore.Weighted
}

// NewEmbedder returns an Embedder for the endpoint in cfg (BaseURL, APIKey,
// HTTPClient, the retry and concurrency fields; defaults as documented on
// [Config]) and the embedding model model, e.g. "text-embedding-3-small" or
// "gemini-embedding-001". It does no I/O. cfg.Model and cfg.Offline play no
// part: there is no offline embedding model, and Embed fails if cfg.Offline.
func NewEmbedder(cfg Config, model string) *Embedder {
	cfg = cfg.withDefaults()
	return &Embedder{cfg: cfg, model: model, api: newOpenAIModel(cfg), sem: semaphore.NewWeighted(int64(cfg.MaxConcurrency))}
}

// Model returns the embedding model's name.
func (e *Embedder) Model() string { return e.model }

// Embed returns one vector per text, in order, all of the same length. It
// sends the texts EmbedBatchSize at a time, one request after another, and
// fails, returning no vectors, on the first request that fails after its
// retries (the error wraps [ErrUnavailable] or a [*ProviderError] as Run's
// do) or when ctx is done. No texts: no request, no vectors.
func (e *Embedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	if e.cfg.Offline {
		return nil, errors.New("embed: no model endpoint configured (the offline model has no embeddings)")
	}
	out := make([][]float32, len(texts))
	for start := 0; start < len(texts); start += EmbedBatchSize {
		batch := texts[start:min(start+EmbedBatchSize, len(texts))]
		resp, retries, err := callWithRetries(ctx, e.cfg, e.sem, nil, e.model, func(ctx context.Context) (resp openai.EmbeddingResponse, err error) {
			err = e.api.do(func(c *openai.Client) (err error) {
				resp, err = c.CreateEmbeddings(ctx, openai.EmbeddingRequestStrings{
					Input:          batch,
					Model:          openai.EmbeddingModel(e.model),
					EncodingFormat: openai.EmbeddingEncodingFormatFloat,
				})
				return err
			})
			return resp, err
		})
		if err != nil {
			e.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "agent: embedding failed",
				slog.String("model", e.model), slog.Int("texts", len(texts)), slog.Int("retries", retries), slog.Any("error", err))
			return nil, fmt.Errorf("embed %d texts: %w", len(texts), err)
		}
		if err := place(out[start:start+len(batch)], resp.Data); err != nil {
			return nil, fmt.Errorf("embed %d texts: model %s: %w", len(texts), e.model, err)
		}
	}
	for i := 1; i < len(out); i++ {
		if len(out[i]) != len(out[0]) {
			return nil, fmt.Errorf("embed %d texts: model %s: vectors of %d and %d dimensions", len(texts), e.model, len(out[0]), len(out[i]))
		}
	}
	return out, nil
}

// place puts each embedding of data at its index in dst, and fails unless
// every slot of dst gets exactly one non-empty vector.
func place(dst [][]float32, data []openai.Embedding) error {
	if len(data) != len(dst) {
		return fmt.Errorf("%d vectors for %d texts", len(data), len(dst))
	}
	for _, d := range data {
		switch {
		case d.Index < 0 || d.Index >= len(dst):
			return fmt.Errorf("vector index %d out of range for %d texts", d.Index, len(dst))
		case dst[d.Index] != nil:
			return fmt.Errorf("two vectors for text %d", d.Index)
		case len(d.Embedding) == 0:
			return fmt.Errorf("empty vector for text %d", d.Index)
		}
		dst[d.Index] = d.Embedding
	}
	return nil
}
