package main

import "testing"

func TestDiscordMentionsConfig(t *testing.T) {
	if c, err := loadConfig(envOf(nil)); err != nil || c.DiscordMentions {
		t.Fatalf("default DiscordMentions %v (%v), want off", c.DiscordMentions, err)
	}
	if c, err := loadConfig(envOf(map[string]string{"DISCORD_MENTIONS": "true"})); err != nil || !c.DiscordMentions {
		t.Fatalf("DISCORD_MENTIONS=true: %v (%v)", c.DiscordMentions, err)
	}
	if _, err := loadConfig(envOf(map[string]string{"DISCORD_MENTIONS": "maybe"})); err == nil {
		t.Fatal("DISCORD_MENTIONS=maybe accepted")
	}
}
