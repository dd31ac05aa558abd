package agent

import (
	"context"
	"time"
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
