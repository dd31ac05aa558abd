package discord

import (
	"github.com/bwmarrin/discordgo"

	"github.com/classbot/classbot/bot"
)

// Register modal: /register typed without options opens it, and its
// submit (interaction type 5) is the same /register with the two fields as
// options, through the same validation, ledger and dedupe.
const (
	// RegisterModalID is the modal's custom_id; a submit with any other is
	// not classbot's and is refused.
	RegisterModalID = "register"
	// ModalNameMax and ModalEmailMax are the lengths Discord enforces on
	// the modal's text inputs (the bot validates them again).
	ModalNameMax  = 100
	ModalEmailMax = 254
)

// opensModal reports whether command's options are optional on Discord
// because typing it without them opens a modal.
func opensModal(command string) bool { return command == "register" }

// wantsModal reports whether in is /register typed without options.
func wantsModal(in *discordgo.Interaction) bool {
	if in.Type != discordgo.InteractionApplicationCommand {
		return false
	}
	data := in.ApplicationCommandData()
	return opensModal(data.Name) && len(data.Options) == 0
}

// registerModal is the type 9 response: a form with a name and an email.
func registerModal() *discordgo.InteractionResponse {
	return &discordgo.InteractionResponse{
		Type: discordgo.InteractionResponseModal,
		Data: &discordgo.InteractionResponseData{
			CustomID: RegisterModalID,
			Title:    "Join the class",
			Components: []discordgo.MessageComponent{
				discordgo.ActionsRow{Components: []discordgo.MessageComponent{discordgo.TextInput{
					CustomID: "name", Label: "Your name, as the teacher should see it", Style: discordgo.TextInputShort,
					Required: true, MinLength: 1, MaxLength: min(ModalNameMax, bot.MaxNameLen),
				}}},
				discordgo.ActionsRow{Components: []discordgo.MessageComponent{discordgo.TextInput{
					CustomID: "email", Label: "Your email (only you and the teacher see it)", Style: discordgo.TextInputShort,
					Placeholder: "you@example.edu", Required: true, MinLength: 3, MaxLength: min(ModalEmailMax, bot.MaxEmailLen),
				}}},
			},
		},
	}
}

// modalCommand fills c (built from a MODAL_SUBMIT) as /register with the
// submitted fields as options. A submit of another modal, or with fields
// that are not classbot's text inputs, fails with a *badOptionError.
func modalCommand(c bot.Command, in *discordgo.Interaction) (bot.Command, error) {
	data := in.ModalSubmitData()
	if data.CustomID != RegisterModalID {
		return c, &badOptionError{option: "custom_id", value: data.CustomID}
	}
	c.Name = "register"
	c.Options = make(map[string]string, 2)
	for _, row := range data.Components {
		r, ok := row.(*discordgo.ActionsRow)
		if !ok {
			return c, &badOptionError{option: "component", value: row}
		}
		for _, comp := range r.Components {
			ti, ok := comp.(*discordgo.TextInput)
			if !ok || (ti.CustomID != "name" && ti.CustomID != "email") {
				return c, &badOptionError{option: "component", value: comp}
			}
			c.Options[ti.CustomID] = ti.Value
		}
	}
	return c, nil
}
