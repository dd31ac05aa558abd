// Package discord is classbot's Discord adapter, built on
// github.com/bwmarrin/discordgo. It turns a Discord slash command into a
// bot.Command, hands it to the bot.Dispatcher, and delivers the replies.
//
// One Adapter serves two transports:
//
//   - HTTP interactions (Handler): Discord POSTs each interaction to
//     /discord/interactions, signed with Ed25519. The first response is the
//     HTTP response itself: type 5 (deferred) in async mode, type 4 (the
//     answer) in sync mode. This transport needs no bot token.
//   - The gateway (Run): a discordgo websocket session receives
//     INTERACTION_CREATE events; the first response is a REST call to
//     POST /interactions/{id}/{token}/callback.
//
// Either way the answer that follows a deferral edits the original response
// (PATCH /webhooks/{app}/{token}/messages/@original) and any further parts of
// a long answer go as follow-up messages. Every message disables mention
// parsing (allowed_mentions.parse = []), so nothing a student typed can ping
// anyone, and text longer than Discord's 2,000 characters is split.
//
// Every REST call goes to Config.APIURL: the session's HTTP client rewrites
// discordgo's built-in https://discord.com/api/v9/ endpoints onto it. Tests
// point it at a local stand-in (package discordtest).
package discord
