package operator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/agentos/agentos/app"
	"github.com/agentos/agentos/fed"
	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"
)

// exitError carries a process exit code through urfave/cli.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// Main runs the CLI and returns the process exit code.
func Main(args []string, build app.BuildInfo) int {
	return Run(args, build, os.Stdout, os.Stderr)
}

// Run runs the CLI with its output on stdout and stderr and returns the
// process exit code (errors are printed to stderr).
func Run(args []string, build app.BuildInfo, stdout, stderr io.Writer) int {
	cliApp := NewCLI(build, stdout, stderr)
	if err := cliApp.Run(args); err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			if ee.msg != "" {
				fmt.Fprintln(stderr, "agentos:", ee.msg)
			}
			return ee.code
		}
		fmt.Fprintln(stderr, "agentos:", err)
		return 1
	}
	return 0
}

// configFlags are the settings of §7.1 as flags of every command that
// loads the configuration.
func configFlags() []cli.Flag {
	out := make([]cli.Flag, 0, len(app.Settings())+1)
	for _, s := range app.Settings() {
		out = append(out, &cli.StringFlag{Name: s.Flag, Usage: s.Usage + " [$" + s.Env + "]"})
	}
	out = append(out, &cli.StringFlag{Name: "env-file", Value: app.EnvFileName, Usage: "settings file read under the environment"})
	return out
}

// loadConfig builds the Config of a command: flags, then environment, then
// the env file, then defaults.
func loadConfig(c *cli.Context) (app.Config, map[string]string, error) {
	envFile, err := app.ReadEnvFile(c.String("env-file"))
	if err != nil {
		return app.Config{}, nil, err
	}
	flags := map[string]string{}
	for _, s := range app.Settings() {
		if c.IsSet(s.Flag) {
			flags[s.Flag] = c.String(s.Flag)
		}
	}
	cfg, err := app.LoadConfig(app.Layers{EnvFile: envFile, Flags: flags})
	return cfg, envFile, err
}

// NewLogger builds the node's JSON logger.
func NewLogger(w io.Writer, level string) zerolog.Logger {
	lvl, err := zerolog.ParseLevel(strings.ToLower(level))
	if err != nil || level == "" {
		lvl = zerolog.InfoLevel
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Str("service", "agentos").Logger()
}

// NewCLI builds the command tree.
func NewCLI(build app.BuildInfo, stdout, stderr io.Writer) *cli.App {
	a := &cli.App{
		Name:           "agentos",
		Usage:          "a multi-tenant, federated agent platform in one binary",
		Version:        build.Version,
		Writer:         stdout,
		ErrWriter:      stderr,
		ExitErrHandler: func(*cli.Context, error) {},
	}
	a.Commands = []*cli.Command{
		{
			Name:  "serve",
			Usage: "run the node in the foreground (for systemd, containers and tests)",
			Flags: append(configFlags(), &cli.BoolFlag{Name: "reset",
				Usage: "when agentos.db is empty or damaged, move it aside (agentos.db.broken-<time>) and start a new, empty node"}),
			Action: func(c *cli.Context) error {
				cfg, envFile, err := loadConfig(c)
				if err != nil {
					return &exitError{2, err.Error()}
				}
				cfg.ResetBrokenStore = c.Bool("reset")
				return serve(c.Context, cfg, envFile, build, stderr)
			},
		},
		{
			Name:  "version",
			Usage: "print version, git sha and build time",
			Action: func(c *cli.Context) error {
				fmt.Fprintf(stdout, "agentos %s (git %s, built %s)\n", build.Version, build.GitSHA, build.BuildTime)
				if sum, err := BinarySHA256(); err == nil {
					fmt.Fprintf(stdout, "binary sha256 %s\n", sum)
				}
				return nil
			},
		},
		{
			Name:  "audit",
			Usage: "audit tools",
			Subcommands: []*cli.Command{{
				Name:      "verify",
				Usage:     "verify the audit hash chain of a tenant (or every tenant) in the data dir",
				ArgsUsage: "[tenant_id]",
				Flags:     configFlags(),
				Action: func(c *cli.Context) error {
					cfg, _, err := loadConfig(c)
					if err != nil {
						return &exitError{2, err.Error()}
					}
					return auditVerify(c.Context, cfg, c.Args().First(), stdout)
				},
			}},
		},
		{
			Name:  "certs",
			Usage: "make a local CA and a node certificate for federation mTLS testing",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "dir", Value: "./certs", Usage: "where the CA and node certificate go (an existing CA there is reused)"},
				&cli.StringSliceFlag{Name: "host", Value: cli.NewStringSlice("127.0.0.1", "localhost"), Usage: "names and addresses the certificate covers"},
			},
			Action: func(c *cli.Context) error {
				if err := fed.GenerateDevPKI(c.String("dir"), c.StringSlice("host")); err != nil {
					return &exitError{1, err.Error()}
				}
				fmt.Fprintf(stdout, "wrote ca.pem, ca.key, node.pem and node.key to %s\nstart nodes with --fed-tls-cert node.pem --fed-tls-key node.key --fed-tls-ca ca.pem (testing only)\n", c.String("dir"))
				return nil
			},
		},
	}
	a.Commands = append(a.Commands, migrateCommand(stdout), storeCommand(stdout), compactCommand(stdout))
	a.Commands = append(a.Commands, operatorCommands(build, stdout, stderr)...)
	a.Commands = append(a.Commands, benchCommand(stdout))
	return a
}

// serve runs a node until SIGINT/SIGTERM, then stops it gracefully.
func serve(ctx context.Context, cfg app.Config, envFile map[string]string, build app.BuildInfo, logw io.Writer) error {
	lb := newLogBuffer(logw, 100*time.Millisecond)
	defer lb.Close()
	log := NewLogger(lb, cfg.LogLevel)
	if err := app.CheckProd(cfg, envFile); err != nil {
		return &exitError{2, err.Error()}
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	n := app.NewNode(cfg, build, log)
	if err := n.Open(ctx); err != nil {
		return &exitError{1, "start node: " + err.Error()}
	}
	// Once up, start-up's garbage (the document parses and schema compiles,
	// tens of MB of temporaries) is collected and its pages handed back to
	// the OS now: with the raised GOGC below the scavenger would keep them
	// for the node's life (~1 MiB of an idle node). Then a serving node
	// keeps a floor of GC headroom unless GOGC or GOMEMLIMIT is set: see
	// app.GCHeadroom.
	debug.FreeOSMemory()
	app.TuneGC(ctx, app.GCHeadroom, 500*time.Millisecond)
	log.Info().Str("stack_a", n.URL(app.StackA)).Str("stack_b", n.URL(app.StackB)).Str("federation", n.URL(app.StackFed)).
		Str("mode", cfg.Mode).Str("store", n.Store().Describe()).Str("version", build.Version).Msg("node ready")
	select {
	case <-ctx.Done():
		log.Info().Msg("stopping: signal received")
	case err := <-n.Errors():
		log.Error().Err(err).Msg("stopping: a router failed")
	}
	if err := n.Close(); err != nil {
		return &exitError{1, "stop node: " + err.Error()}
	}
	log.Info().Msg("stopped")
	return nil
}
