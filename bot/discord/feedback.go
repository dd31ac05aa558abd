package discord

import (
	"strings"

	"github.com/bwmarrin/discordgo"

	"github.com/classbot/classbot/bot"
)

// Custom ids of the feedback buttons: the prefix, then the /ask's
// interaction id (a snowflake, well within Discord's 100 characters).
const (
	helpfulPrefix    = "classbot_helpful:"
	notHelpfulPrefix = "classbot_not_helpful:"
)

// feedbackButtons returns the "helpful" / "not helpful" buttons of r, or
// nil when r asks for none.
func feedbackButtons(r bot.Reply) []discordgo.MessageComponent {
	if r.Feedback == "" {
		return nil
	}
	return []discordgo.MessageComponent{discordgo.ActionsRow{Components: []discordgo.MessageComponent{
		discordgo.Button{Label: "Helpful", Style: discordgo.SecondaryButton, CustomID: helpfulPrefix + r.Feedback,
			Emoji: &discordgo.ComponentEmoji{Name: "👍"}},
		discordgo.Button{Label: "Not helpful", Style: discordgo.SecondaryButton, CustomID: notHelpfulPrefix + r.Feedback,
			Emoji: &discordgo.ComponentEmoji{Name: "👎"}},
	}}}
}

// componentCommand fills c from a MESSAGE_COMPONENT interaction: a click on
// a feedback button is a bot.FeedbackCommand; any other custom id gives
// one without options, which the bot answers "that button doesn't work".
func componentCommand(c bot.Command, in *discordgo.Interaction) bot.Command {
	c.Name = bot.FeedbackCommand
	id := in.MessageComponentData().CustomID
	for prefix, helpful := range map[string]string{helpfulPrefix: "true", notHelpfulPrefix: "false"} {
		if answer, ok := strings.CutPrefix(id, prefix); ok && isSnowflake(answer) {
			c.Options = map[string]string{bot.FeedbackAnswer: answer, bot.FeedbackHelpful: helpful}
		}
	}
	return c
}
