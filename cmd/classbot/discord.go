package main

import "context"

// setupDiscord wires the Discord adapter when DISCORD_PUBLIC_KEY or
// DISCORD_BOT_TOKEN is set; nil otherwise.
func setupDiscord(ctx context.Context, a *app) (*platform, error) {
	return nil, nil
}

func runDiscord(ctx context.Context, e env, args []string) error {
	return usagef("discord: not built yet")
}
