// Package logctx carries the platform's interaction id in a context so that
// every log line written while handling a command names it, including lines
// from packages that know nothing of commands (agent, store).
package logctx

import (
	"context"
	"log/slog"
)

type key struct{}

// Key is the attribute name the id is logged under.
const Key = "interaction"

// WithInteraction returns ctx carrying the interaction id.
func WithInteraction(ctx context.Context, id string) context.Context {
	if id == "" {
		return ctx
	}
	return context.WithValue(ctx, key{}, id)
}

// Interaction returns the id ctx carries, or "".
func Interaction(ctx context.Context) string {
	id, _ := ctx.Value(key{}).(string)
	return id
}

// Handler adds the interaction id of the context to every record logged
// with one (slog's *Context methods), unless the record already has it.
type Handler struct{ slog.Handler }

// NewHandler wraps h.
func NewHandler(h slog.Handler) Handler { return Handler{h} }

// Handle implements slog.Handler.
func (h Handler) Handle(ctx context.Context, r slog.Record) error {
	if id := Interaction(ctx); id != "" {
		has := false
		r.Attrs(func(a slog.Attr) bool {
			has = a.Key == Key
			return !has
		})
		if !has {
			r.AddAttrs(slog.String(Key, id))
		}
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (h Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return Handler{h.Handler.WithAttrs(attrs)}
}

// WithGroup implements slog.Handler.
func (h Handler) WithGroup(name string) slog.Handler { return Handler{h.Handler.WithGroup(name)} }
