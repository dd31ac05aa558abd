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
	"github.com/gorilla/websocket"

	"github.com/classbot/classbot/bot"
)

// gatewayBusyText answers a gateway interaction when MaxGatewayHandlers are
// already in progress.
const gatewayBusyText = "Lots of students are typing right now, so I'm busy. Please try again in a minute."

// handlerTimeout bounds one gateway interaction's handling: the token lives
// 15 minutes, after which nothing can be delivered anyway.
const handlerTimeout = 14 * time.Minute

// Run connects to the gateway with the bot token, registers the commands,
// handles INTERACTION_CREATE events until ctx is done, then closes the
// connection (discordgo's close takes about a second) and waits up to
// drainTimeout for the interactions being handled to get their first
// response. A dropped connection is reopened with backoff (discordgo
// resumes the session). It returns nil after a clean stop, or an error if
// there is no bot token or the commands cannot be registered.
func (a *Adapter) Run(ctx context.Context) error {
	if a.cfg.BotToken == "" {
		return errors.New("discord: the gateway needs a bot token (DISCORD_BOT_TOKEN)")
	}
	if a.cfg.Dispatcher == nil {
		return errors.New("discord: the gateway needs Config.Dispatcher")
	}
	if err := a.RegisterCommands(ctx); err != nil {
		return err
	}

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
			return a.drain()
		}
		if err != nil {
			a.log.LogAttrs(ctx, slog.LevelWarn, "discord: gateway connection failed; retrying",
				slog.Duration("in", backoff), slog.Any("err", err))
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return a.drain()
			case <-t.C:
			}
			backoff = min(2*backoff, 2*time.Minute)
			continue
		}
		a.log.LogAttrs(ctx, slog.LevelInfo, "discord: gateway connected")
		backoff = time.Second
		select {
		case <-ctx.Done():
			a.closeSession()
			return a.drain()
		case <-disconnected:
			a.log.LogAttrs(ctx, slog.LevelWarn, "discord: gateway disconnected; reconnecting")
		}
	}
}

func (a *Adapter) closeSession() {
	if err := a.session.Close(); err != nil {
		a.log.Warn("discord: closing the gateway", "err", err)
	}
}

// drain stops new gateway handlers and waits, bounded, for those running.
func (a *Adapter) drain() error {
	a.mu.Lock()
	a.closing = true
	a.mu.Unlock()
	done := make(chan struct{})
	go func() { a.handlers.Wait(); close(done) }()
	t := time.NewTimer(drainTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		a.log.Warn("discord: gateway interactions still being handled at shutdown")
	}
	return nil
}

// drainTimeout bounds how long Run waits, after closing the gateway, for
// interactions it already received to get their first response. Async
// work after that is the Dispatcher's to drain.
const drainTimeout = 10 * time.Second

// handleGateway handles one INTERACTION_CREATE. discordgo calls it in its
// own goroutine (SyncEvents is false); the slots bound how many run at once.
func (a *Adapter) handleGateway(runCtx context.Context, in *discordgo.Interaction) {
	if in == nil || in.Type != discordgo.InteractionApplicationCommand {
		return
	}
	received := time.Now()
	a.mu.Lock()
	if a.closing {
		a.mu.Unlock()
		return
	}
	a.handlers.Add(1)
	a.mu.Unlock()
	defer a.handlers.Done()

	ctx, cancel := context.WithTimeout(context.WithoutCancel(runCtx), handlerTimeout)
	defer cancel()
	resp := &gatewayResponder{webhook: a.webhook(in), id: in.ID}
	select {
	case a.slots <- struct{}{}:
		defer func() { <-a.slots }()
	default:
		if err := resp.Respond(ctx, bot.Reply{Text: gatewayBusyText, Ephemeral: true}); err != nil {
			a.log.LogAttrs(ctx, slog.LevelWarn, "discord: busy answer failed", slog.String("interaction", in.ID), slog.Any("err", err))
		}
		return
	}
	defer func() {
		if p := recover(); p != nil {
			a.log.LogAttrs(ctx, slog.LevelError, "discord: panic handling interaction", slog.String("interaction", in.ID), slog.Any("panic", p))
		}
	}()
	if err := a.cfg.Dispatcher.Dispatch(ctx, a.command(in, received), resp); err != nil {
		a.log.LogAttrs(ctx, slog.LevelWarn, "discord: first response failed",
			slog.String("interaction", in.ID), slog.Any("err", err))
	}
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
// commands, built from bot.Commands: every option a string.
func Commands() []*discordgo.ApplicationCommand {
	out := make([]*discordgo.ApplicationCommand, 0, len(bot.Commands))
	for _, s := range bot.Commands {
		cmd := &discordgo.ApplicationCommand{
			Name:        s.Name,
			Description: s.Description,
			Type:        discordgo.ChatApplicationCommand,
		}
		for _, o := range s.Options {
			opt := &discordgo.ApplicationCommandOption{
				Type:        discordgo.ApplicationCommandOptionString,
				Name:        o.Name,
				Description: o.Description,
				Required:    o.Required,
			}
			if o.MaxLength > 0 {
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
