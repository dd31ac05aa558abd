// Package bot is classbot's core: the platform-neutral Command, the Responder
// that every adapter implements, the Dispatcher that runs commands in sync or
// async mode, the command handlers and their input validation.
//
// An adapter (bot/slack, bot/discord, bot/console) turns a platform event into
// a Command and hands it, with its Responder, to the Dispatcher: Dispatch from
// a request's goroutine (HTTP), Go from an event loop that must keep reading
// (Socket Mode, the gateway). The Dispatcher is the one owner of command
// concurrency: adapters run no goroutines, limits or drains of their own.
// Handlers never see a platform type.
//
// The two modes are the lesson classbot teaches:
//
//   - Sync: the store write, then the agent call, then the answer, all inside
//     the platform's request. Time ≈ store + agent.
//   - Async: acknowledge at once, then run the store write and the agent call
//     concurrently in a bounded worker and deliver the answer as a follow-up.
//     Time ≈ max(store, agent).
//
// A third, durable mode (queue) will run the same jobs from PostgreSQL; the
// seam for it is where Dispatcher.dispatch hands an acknowledged job to
// Dispatcher.work.
package bot
