// Package bot is classbot's core: the platform-neutral Command, the Responder
// that every adapter implements, the Dispatcher that runs commands in its
// mode, the command handlers and their input validation.
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
// Queue mode does the async work as durable jobs in PostgreSQL (package
// queue). Auto mode starts the work at once and answers inline if it ends
// within Config.AutoInlineBudget, else acknowledges then and follows up
// with the same work's answer (auto.go).
//
// Fair shares (limit.go, progress.go): STUDENT_ASK_RATE bounds each
// student's /ask; the model's slots are shared between classes in turn by
// the agent's Runner (agent.WithClass, CLASS_LLM_RPM); a student waiting
// in that line sees their place, and an /ask the line cannot serve within
// the command timeout is told so at once.
package bot
