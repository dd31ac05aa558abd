package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/bwmarrin/discordgo"

	"github.com/classbot/classbot/bot"
	"github.com/classbot/classbot/bot/discord"
)

// setupDiscord wires the Discord adapter when DISCORD_PUBLIC_KEY or
// DISCORD_BOT_TOKEN is set; nil otherwise. The public key turns on
// POST /discord/interactions; the bot token turns on the gateway, which
// registers the commands when it starts. Discord refusing the bot token
// (401) at that registration ends the gateway's run with an error that
// names DISCORD_BOT_TOKEN; other failures are retried.
func setupDiscord(ctx context.Context, a *app) (*platform, error) {
	if a.cfg.DiscordPublicKey == "" && a.cfg.DiscordBotToken == "" {
		return nil, nil
	}
	refused := make(chan error, 1) // the first registration refused with 401
	onRegister := func(err error) {
		if discordTokenRefused(err) {
			select {
			case refused <- err:
			default:
			}
		}
	}
	ad, err := newDiscordAdapter(a.cfg, a.disp, a.log, a.metrics, func(reason string) { a.metrics.refuse("discord", reason) }, onRegister)
	if err != nil {
		return nil, err
	}
	p := &platform{name: "discord"}
	if r, ok := any(ad).(bot.Reopener); ok {
		p.reopener = r
	}
	if a.cfg.DiscordPublicKey != "" {
		p.routes = map[string]http.Handler{"POST /discord/interactions": ad.Handler()}
	}
	if a.cfg.DiscordBotToken != "" {
		p.run = func(ctx context.Context) error { return runUntilRefused(ctx, ad.Run, refused) }
		// The gateway registers the commands in the background, retrying
		// with backoff; until it succeeds /readyz says so (still 200: the
		// commands registered before keep working) and so does /metrics.
		p.status = func() string {
			ok, err := ad.CommandsRegistered()
			switch {
			case ok:
				return ""
			case err != nil:
				return "commands not registered yet (retrying): " + err.Error()
			default:
				return "commands not registered yet"
			}
		}
	}
	return p, nil
}

// runUntilRefused runs run until it returns or a token is refused on
// refused; then it stops run, waits for it and returns the refusal,
// rewritten to name DISCORD_BOT_TOKEN.
func runUntilRefused(ctx context.Context, run func(context.Context) error, refused <-chan error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	select {
	case err := <-done:
		return err
	case err := <-refused:
		cancel()
		<-done
		return discordTokenError(err)
	}
}

// discordTokenRefused reports whether err is Discord refusing the bot
// token: HTTP 401 from its REST API.
func discordTokenRefused(err error) bool {
	var re *discordgo.RESTError
	return errors.As(err, &re) && re.Response != nil && re.Response.StatusCode == http.StatusUnauthorized
}

// discordTokenError rewrites a refused bot token into what to do about it.
func discordTokenError(err error) error {
	return &hintError{
		msg: "Discord refused DISCORD_BOT_TOKEN (401 Unauthorized): copy the bot token again from the Discord developer portal " +
			"(your application, Bot, Reset Token) into DISCORD_BOT_TOKEN; it is not the Public Key or the Client Secret",
		err: err,
	}
}

// newDiscordAdapter builds the adapter from the configuration. disp may be
// nil for register-commands, which only talks to Discord's REST API.
// onRegister, when not nil, gets the result of each command registration
// the gateway makes, after the metrics.
func newDiscordAdapter(cfg Config, disp *bot.Dispatcher, log *slog.Logger, m *metrics, onRefuse func(reason string), onRegister func(error)) (*discord.Adapter, error) {
	dc := discord.Config{
		AppID:        cfg.DiscordAppID,
		BotToken:     cfg.DiscordBotToken,
		GuildID:      cfg.DiscordGuildID,
		Mentions:     cfg.DiscordMentions,
		APIURL:       cfg.DiscordAPIURL,
		Dispatcher:   disp,
		Logger:       log,
		OnRefuseFunc: onRefuse,
	}
	dc.RegisterResultFunc = func(err error) {
		if m != nil {
			m.commandRegistration(err)
		}
		if onRegister != nil {
			onRegister(err)
		}
	}
	if cfg.DiscordPublicKey != "" {
		key, err := hex.DecodeString(cfg.DiscordPublicKey)
		if err != nil {
			return nil, fmt.Errorf("DISCORD_PUBLIC_KEY must be 64 hex characters: %w", err)
		}
		dc.PublicKey = key
	}
	return discord.New(dc)
}

const discordUsage = `Usage: classbot discord <command>

Commands:
  register-commands  replace the /register and /ask slash commands on Discord
                     (in DISCORD_GUILD_ID when set: instant; globally otherwise:
                     up to an hour). Needs DISCORD_BOT_TOKEN and DISCORD_APP_ID.
`

// runDiscord is "classbot discord SUBCOMMAND".
func runDiscord(ctx context.Context, e env, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, discordUsage)
		return usagef("discord: no command given (see classbot discord --help)")
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(e.stdout, discordUsage)
		return flag.ErrHelp
	case "register-commands":
		return runDiscordRegister(ctx, e, args[1:])
	default:
		fmt.Fprint(e.stderr, discordUsage)
		return usagef("discord: unknown command %q (see classbot discord --help)", args[0])
	}
}

func runDiscordRegister(ctx context.Context, e env, args []string) error {
	fs := newFlagSet(e, "discord register-commands", "[--guild ID]")
	guild := fs.String("guild", "", "register in this guild (default: DISCORD_GUILD_ID, else globally)")
	if err := parseFlags(fs, e, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("discord register-commands takes no arguments, got %q", fs.Args())
	}
	cfg, err := loadConfig(e.getenv)
	if err != nil {
		return err
	}
	if cfg.DiscordBotToken == "" || cfg.DiscordAppID == "" {
		return usagef("discord register-commands needs DISCORD_BOT_TOKEN and DISCORD_APP_ID (from the Discord developer portal)")
	}
	if *guild != "" {
		cfg.DiscordGuildID = *guild
	}
	ad, err := newDiscordAdapter(cfg, nil, newLogger(e.stderr, slog.LevelWarn), nil, nil, nil)
	if err != nil {
		return err
	}
	if err := ad.RegisterCommands(ctx); err != nil {
		if discordTokenRefused(err) {
			return discordTokenError(err)
		}
		return err
	}
	where := "globally (they can take up to an hour to appear)"
	if cfg.DiscordGuildID != "" {
		where = "in guild " + cfg.DiscordGuildID
	}
	fmt.Fprintf(e.stdout, "registered /register and /ask %s\n", where)
	return nil
}
