// Package slack is classbot's Slack adapter, built on
// github.com/slack-go/slack. It turns a Slack slash command into a
// bot.Command, hands it to the bot.Dispatcher, and delivers the replies.
//
// One Adapter serves two transports:
//
//   - HTTP (Handler): Slack POSTs each slash command to /slack/commands as a
//     form, signed with the app's signing secret. The first response is the
//     HTTP response itself: a short ephemeral "Registering you…" (or an
//     empty body) in async mode, the answer in sync mode.
//   - Socket Mode (Run): with an app-level token, slack-go's socketmode
//     client opens a websocket (apps.connections.open), so classbot needs no
//     public URL. Every envelope is acknowledged; a slash command's first
//     response is the acknowledgement's payload. Each command is handed to
//     Dispatcher.Go: the adapter runs no goroutines, limits or drains of its
//     own for commands.
//
// Slack escapes a typed &, < and > as &amp;, &lt; and &gt; and marks links
// and mentions up as <…>; PlainText turns the command's text back into what
// the student typed before the bot sees it.
//
// Either way the answer that follows an acknowledgement is POSTed as JSON to
// the command's response_url (ephemeral when the reply is: a registration
// shows the student's email). A response_url must lie under one of
// Config.ResponseURLPrefixes (SLACK_RESPONSE_URL_PREFIX) or the command is
// refused; posts follow no redirects and reach only public addresses unless
// a prefix names a private one. A response_url is a credential and is
// never logged. If a post fails or the URL has expired, and a bot token is
// configured, the answer goes through chat.postEphemeral to the student
// instead.
//
// Every text is escaped (&, <, > become &amp;, &lt;, &gt;), so nothing a
// student typed — <!channel>, <!here>, <@U123> — can ping anyone or turn into
// a link. Long answers are cut into messages of at most MaxMessageLen
// characters, at most MaxMessages of them (a response_url takes five posts).
//
// Every Web API call goes to Config.APIURL; tests point it, and the
// response_url in their payloads, at a local stand-in (package slacktest).
package slack
