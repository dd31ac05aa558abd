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
//     INTERACTION_CREATE events and hands each to Dispatcher.Go; the first
//     response is a REST call to POST /interactions/{id}/{token}/callback.
//     Run also registers the commands, in the background, retrying with
//     backoff until it succeeds (CommandsRegistered reports the state).
//
// The adapter runs no command concurrency of its own: limits, the "busy"
// and "restarting" answers and the drain at shutdown are the Dispatcher's.
//
// Either way the answer that follows a deferral edits the original response
// (PATCH /webhooks/{app}/{token}/messages/@original) and any further parts of
// a long answer go as follow-up messages. Every message disables mention
// parsing (allowed_mentions.parse = []), so nothing a student typed can ping
// anyone. Text longer than Discord's 2,000 characters is split into at most
// MaxMessages (5) messages, the last ending with "…" when the answer was cut.
//
// What comes in is checked before any work: the interaction id and
// application id must be numeric snowflakes and the token 1 to MaxTokenLen
// characters of [A-Za-z0-9._-] (they become parts of REST paths), and every
// option value must be a string (all of classbot's options are).
//
// Every REST call goes to Config.APIURL: the session's HTTP client rewrites
// discordgo's built-in https://discord.com/api/v9/ endpoints onto it. Tests
// point it at a local stand-in (package discordtest).
package discord
