package agent

import (
	"context"
	"errors"
	"net/http"
	"time"

	openai "github.com/sashabaranov/go-openai"
)

type workBudgetKey struct{}

// WithWorkBudget returns ctx carrying d: Runner.Run applies d as the deadline of its work only after it has its model slot, so waiting for a slot does not use the budget.
func WithWorkBudget(ctx context.Context, d time.Duration) context.Context {
	return context.WithValue(ctx, workBudgetKey{}, d)
}

// WorkBudget returns the budget WithWorkBudget put in ctx, if any.
func WorkBudget(ctx context.Context) (time.Duration, bool) {
	d, ok := ctx.Value(workBudgetKey{}).(time.Duration)
	return d, ok
}

// IsPermanent reports whether err is the provider refusing the request
// for good: a 4xx other than 408, 409 and 429. Trying again would not help.
func IsPermanent(err error) bool {
	var ae *openai.APIError
	if !errors.As(err, &ae) {
		return false
	}
	switch s := ae.HTTPStatusCode; {
	case s == http.StatusRequestTimeout, s == http.StatusConflict, s == http.StatusTooManyRequests:
		return false
	default:
		return s >= 400 && s < 500
	}
}
