package discord

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/cenkalti/backoff/v5"
	"github.com/gorilla/websocket"

	"github.com/classbot/classbot/bot"
)

// replyTimeout bounds an answer the adapter gives by itself, without the
// Dispatcher: a gateway interaction refused for an option of the wrong type.
const replyTimeout = 10 * time.Second

// Run connects to the gateway with the bot token and hands every
// INTERACTION_CREATE to the Dispatcher (Dispatcher.Go) until ctx is done,
// then closes the connection (discordgo's close takes about a second) and
// returns nil. A dropped connection is reopened with backoff (discordgo
// resumes the session).
//
// Meanwhile it registers the commands in the background: a failed attempt
// is logged, reported to Config.RegisterResultFunc and CommandsRegistered,
// and retried after 1 s, doubling to 5 minutes, jittered, until it succeeds
// or ctx is done; it never makes Run fail, and interactions are served
// while it retries. Run returns only after that goroutine has ended.
//
// Run does not wait for the commands it handed to the Dispatcher: draining
// them is Dispatcher.Shutdown's job. It returns an error at once only when
// the configuration cannot work: no bot token, no application id or no
// Dispatcher.
func (a *Adapter) Run(ctx context.Context) error {
	if a.cfg.BotToken == "" {
		return errors.New("discord: the gateway needs a bot token (DISCORD_BOT_TOKEN)")
	}
	if a.cfg.AppID == "" {
		return errors.New("discord: the gateway needs the application id (DISCORD_APP_ID)")
	}
	if a.cfg.Dispatcher == nil {
		return errors.New("discord: the gateway needs Config.Dispatcher")
	}
	var registering sync.WaitGroup
	registering.Go(func() { a.registerLoop(ctx) })
	defer registering.Wait()

	disconnected := make(chan struct{}, 1)
	removeDisc := a.session.AddHandler(func(_ *discordgo.Session, _ *discordgo.Disconnect) {
		select {
		case disconnected <- struct{}{}:
		default:
		}
	})
	defer removeDisc()
	removeIC := a.session.AddHandler(func(_ *discordgo.Session, ic *discordgo.InteractionCreate) {
		a.handleGateway(ctx, ic.Interaction)
	})
	defer removeIC()
	defer a.addMentionHandlers(ctx)()

	// discordgo's Open blocks on reads without deadlines; the dialer hands
	// us each connection so ctx can break a stuck Open.
	conns := &connTracker{}
	a.session.Dialer = &websocket.Dialer{
		NetDialContext:   conns.dial,
		HandshakeTimeout: 15 * time.Second,
		Proxy:            websocket.DefaultDialer.Proxy,
	}

	backoff := time.Second
	for {
		stop := context.AfterFunc(ctx, conns.closeAll)
		err := a.session.Open()
		stop()
		if errors.Is(err, discordgo.ErrWSAlreadyOpen) {
			err = nil // a late disconnect signal: still connected
		}
		if ctx.Err() != nil {
			if err == nil {
				a.closeSession()
			}
			return nil
		}
		if err != nil {
			a.log.LogAttrs(ctx, slog.LevelWarn, "discord: gateway connection failed; retrying",
				slog.Duration("in", backoff), slog.Any("err", err))
			if !sleep(ctx, backoff) {
				return nil
			}
			backoff = min(2*backoff, 2*time.Minute)
			continue
		}
		a.log.LogAttrs(ctx, slog.LevelInfo, "discord: gateway connected")
		backoff = time.Second
		select {
		case <-ctx.Done():
			a.closeSession()
			return nil
		case <-disconnected:
			a.log.LogAttrs(ctx, slog.LevelWarn, "discord: gateway disconnected; reconnecting")
		}
	}
}

// sleep waits d, or until ctx is done; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (a *Adapter) closeSession() {
	if err := a.session.Close(); err != nil {
		a.log.Warn("discord: closing the gateway", "err", err)
	}
}

// registerLoop registers the commands, retrying with jittered exponential
// backoff (cenkalti/backoff, as the agent's retries: from registerBackoff,
// doubling, each wait spread over ±50 %, at most registerMaxBackoff, with
// no overall limit) until an attempt succeeds or ctx is done. Each finished
// attempt updates CommandsRegistered and is reported to
// Config.RegisterResultFunc; an attempt cut short by ctx is not.
func (a *Adapter) registerLoop(ctx context.Context) {
	attempt := 0
	_, _ = backoff.Retry(ctx, func() (struct{}, error) {
		attempt++
		err := a.RegisterCommands(ctx)
		if ctx.Err() != nil {
			return struct{}{}, backoff.Permanent(ctx.Err())
		}
		a.regMu.Lock()
		a.registered = a.registered || err == nil
		a.regErr = err
		a.regMu.Unlock()
		a.reportRegistration(ctx, err)
		return struct{}{}, err
	},
		backoff.WithBackOff(&backoff.ExponentialBackOff{
			InitialInterval: a.registerBackoff, RandomizationFactor: 0.5, Multiplier: 2, MaxInterval: a.registerMaxBackoff,
		}),
		backoff.WithMaxElapsedTime(0), // keep trying while Run runs
		backoff.WithNotify(func(err error, wait time.Duration) {
			a.log.LogAttrs(ctx, slog.LevelWarn, "discord: registering commands failed; retrying",
				slog.Int("attempt", attempt), slog.Duration("in", wait), slog.Any("err", err))
		}),
	)
}

// reportRegistration calls Config.RegisterResultFunc, recovering a panic
// in it: a metrics hook must not stop the retries or the process.
func (a *Adapter) reportRegistration(ctx context.Context, err error) {
	if a.cfg.RegisterResultFunc == nil {
		return
	}
	defer func() {
		if p := recover(); p != nil {
			a.log.LogAttrs(ctx, slog.LevelError, "discord: RegisterResultFunc panicked", slog.Any("panic", p))
		}
	}()
	a.cfg.RegisterResultFunc(err)
}

// CommandsRegistered reports whether Run has registered the commands since
// the Adapter was created, and the error of Run's last registration attempt
// (nil once one succeeded, or before the first attempt has finished). It is
// safe for concurrent use, for /readyz and metrics.
func (a *Adapter) CommandsRegistered() (ok bool, lastErr error) {
	a.regMu.Lock()
	defer a.regMu.Unlock()
	return a.registered, a.regErr
}

// handleGateway handles one INTERACTION_CREATE. discordgo calls it in its
// own short-lived goroutine (SyncEvents is false). An application command
// goes to Dispatcher.Go, which returns at once (after answering "busy" or
// "restarting" itself when it refuses the command); everything else about
// the command's concurrency, limits and drain is the Dispatcher's.
//
// An interaction whose ids or token could not be used safely in a URL is
// ignored with a warning (nothing could be sent back to it). One with an
// option of the wrong type is answered here, at once, without dispatch.
func (a *Adapter) handleGateway(ctx context.Context, in *discordgo.Interaction) {
	if in == nil || (in.Type != discordgo.InteractionApplicationCommand && in.Type != discordgo.InteractionModalSubmit &&
		in.Type != discordgo.InteractionMessageComponent) {
		return
	}
	received := time.Now()
	if reason := a.checkIDs(in); reason != "" {
		a.countRefusal(reason)
		a.log.LogAttrs(ctx, slog.LevelWarn, "discord: gateway interaction ignored: malformed id or token",
			slog.String("reason", reason))
		return
	}
	resp := &gatewayResponder{webhook: a.webhook(in)}
	if wantsModal(in) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), replyTimeout)
		defer cancel()
		if err := resp.callback(rctx, registerModal()); err != nil {
			a.log.LogAttrs(ctx, slog.LevelWarn, "discord: opening the register modal failed",
				slog.String("interaction", in.ID), slog.Any("err", err))
		}
		return
	}
	c, err := a.command(in, received)
	if err != nil {
		a.countRefusal(RefuseBadOption)
		a.log.LogAttrs(ctx, slog.LevelWarn, "discord: gateway interaction refused",
			slog.String("interaction", in.ID), slog.String("reason", RefuseBadOption), slog.Any("err", err))
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), replyTimeout)
		defer cancel()
		if err := resp.Respond(rctx, badOptionReply(err)); err != nil {
			a.log.LogAttrs(ctx, slog.LevelWarn, "discord: answer to a refused interaction failed",
				slog.String("interaction", in.ID), slog.Any("err", err))
		}
		return
	}
	a.cfg.Dispatcher.Go(ctx, c, resp)
}

// connTracker remembers the gateway's network connections so a cancelled
// Run can close one that discordgo is blocked reading.
type connTracker struct {
	mu    sync.Mutex
	conns []net.Conn
}

func (t *connTracker) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	// Keep only live ones: discordgo closes old connections itself.
	t.conns = append(t.conns[:0:0], c)
	return c, nil
}

func (t *connTracker) closeAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range t.conns {
		_ = c.Close()
	}
	t.conns = nil
}

// Commands returns classbot's slash commands as Discord application
// commands, built from bot.Commands: every option a string, but a
// bot.OptionBool, which is a boolean.
func Commands() []*discordgo.ApplicationCommand {
	out := make([]*discordgo.ApplicationCommand, 0, len(bot.Commands))
	for _, s := range bot.Commands {
		cmd := &discordgo.ApplicationCommand{
			Name:        s.Name,
			Description: s.Description,
			Type:        discordgo.ChatApplicationCommand,
		}
		if s.Teacher {
			// Hidden from members without Manage Server; the bot still
			// checks every call (bot.Bot.IsTeacher).
			perm := int64(discordgo.PermissionManageGuild)
			cmd.DefaultMemberPermissions = &perm
		}
		for _, o := range s.Options {
			opt := &discordgo.ApplicationCommandOption{
				Type:        discordgo.ApplicationCommandOptionString,
				Name:        o.Name,
				Description: o.Description,
				// /register without options opens a modal instead.
				Required: o.Required && !opensModal(s.Name),
			}
			if o.Type == bot.OptionBool {
				opt.Type = discordgo.ApplicationCommandOptionBoolean
			} else if o.MaxLength > 0 {
				opt.MaxLength = min(o.MaxLength, 6000) // Discord's ceiling for string options
			}
			cmd.Options = append(cmd.Options, opt)
		}
		out = append(out, cmd)
	}
	return out
}

// RegisterCommands replaces the application's commands with Commands(): in
// Config.GuildID when set (instant), globally otherwise. It needs the bot
// token and the application id.
func (a *Adapter) RegisterCommands(ctx context.Context) error {
	if a.cfg.BotToken == "" || a.cfg.AppID == "" {
		return errors.New("discord: registering commands needs a bot token (DISCORD_BOT_TOKEN) and the application id (DISCORD_APP_ID)")
	}
	where := "globally"
	if a.cfg.GuildID != "" {
		where = "in guild " + a.cfg.GuildID
	}
	got, err := a.session.ApplicationCommandBulkOverwrite(a.cfg.AppID, a.cfg.GuildID, Commands(), discordgo.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("discord: register commands %s: %w", where, err)
	}
	a.log.LogAttrs(ctx, slog.LevelInfo, "discord: commands registered", slog.String("where", where), slog.Int("commands", len(got)))
	return nil
}
