package operator

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/agentos/agentos/app"
	"github.com/urfave/cli/v2"
)

// operatorCommands are the operator UX commands (up, validate, …).
func operatorCommands(build app.BuildInfo, stdout, stderr io.Writer) []*cli.Command {
	o := &operator{build: build, out: stdout, errw: stderr, reportsDir: ReportsDir}
	withConfig := func(fn func(c *cli.Context, cfg app.Config, envFile map[string]string) error) cli.ActionFunc {
		return func(c *cli.Context) error {
			cfg, envFile, err := loadConfig(c)
			if err != nil {
				return &exitError{2, err.Error()}
			}
			return fn(c, cfg, envFile)
		}
	}
	keyFlags := []cli.Flag{
		&cli.StringFlag{Name: "url", Usage: "Stack A base URL (default: from <data-dir>/node.json)"},
		&cli.StringFlag{Name: "api-key", Usage: "platform admin key (default: $AGENTOS_API_KEY, then credentials.json)"},
	}
	return []*cli.Command{
		{
			Name:  "up",
			Usage: "start the node in the background (idempotent) and run preflight, boot, seed, wire, validate, report",
			Flags: append(configFlags(),
				&cli.BoolFlag{Name: "foreground", Usage: "keep the node attached to this process"},
				&cli.BoolFlag{Name: "allow-public-admin", Usage: "prod: allow Stack A (admin API) on a non-loopback address"}),
			Action: withConfig(func(c *cli.Context, cfg app.Config, envFile map[string]string) error {
				l := launch{Flags: explicitFlags(c), EnvFile: absPath(c.String("env-file")), AllowPublicAdmin: c.Bool("allow-public-admin")}
				return o.up(c.Context, cfg, envFile, upOptions{Foreground: c.Bool("foreground"), Launch: l, EnvFilePath: c.String("env-file")})
			}),
		},
		{
			Name:  "validate",
			Usage: "run the gates of CONTRACT §7 against the running node, or a node or cluster by URL (--target-*); non-zero when one fails, 3 when the target cannot be reached",
			Flags: slices.Concat(configFlags(), keyFlags[:1], []cli.Flag{
				&cli.StringFlag{Name: "api-key", Usage: "local node: platform admin key (default: $AGENTOS_API_KEY, then credentials.json); by URL: a tenant key [$" + TargetAPIKeyEnv + "]"},
			}, remoteFlags(), outputFlags()),
			Action: func(c *cli.Context) error {
				out, err := readOutput(c)
				if err != nil {
					return &exitError{ExitUsage, err.Error()}
				}
				r, remote, err := readRemote(c)
				if err != nil {
					return &exitError{ExitUsage, err.Error()}
				}
				if remote {
					return o.validateRemote(c.Context, r, out)
				}
				return withConfig(func(c *cli.Context, cfg app.Config, _ map[string]string) error {
					return o.validate(c.Context, cfg, c.String("url"), c.String("api-key"), out)
				})(c)
			},
		},
		{
			Name:  "status",
			Usage: "process, ports, health, and counts of tenants and runs",
			Flags: append(configFlags(), keyFlags[1]),
			Action: withConfig(func(c *cli.Context, cfg app.Config, _ map[string]string) error {
				// The store is the running node's: `up` recorded the one it
				// was given in launch.json (unless this command names one).
				if l, ok := readLaunch(cfg); ok && !c.IsSet("store") && l.Flags["store"] != "" {
					cfg.Store = l.Flags["store"]
				}
				return o.status(c.Context, cfg, c.String("api-key"))
			}),
		},
		{
			Name:      "logs",
			Usage:     "print the node's log lines of one service",
			ArgsUsage: "<stack-a|stack-b|federation|all>",
			Flags: append(configFlags(),
				&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep printing new lines"},
				&cli.IntFlag{Name: "lines", Aliases: []string{"n"}, Value: 200, Usage: "last N matching lines (0: all)"}),
			Action: withConfig(func(c *cli.Context, cfg app.Config, _ map[string]string) error {
				pos, err := interspersed(c)
				if err != nil {
					return err
				}
				svc := "all"
				if len(pos) > 0 {
					svc = pos[0]
				}
				return o.logs(c.Context, cfg, svc, c.Int("lines"), c.Bool("follow"))
			}),
		},
		{
			Name:  "redeploy",
			Usage: "graceful restart with the same configuration; data kept (idempotent)",
			Flags: configFlags(),
			Action: withConfig(func(c *cli.Context, cfg app.Config, envFile map[string]string) error {
				l, _ := readLaunch(cfg)
				maps.Copy(l.Flags, explicitFlags(c))
				if c.IsSet("env-file") || l.EnvFile == "" {
					l.EnvFile = absPath(c.String("env-file"))
				}
				ef, err := app.ReadEnvFile(l.EnvFile)
				if err != nil {
					return &exitError{2, err.Error()}
				}
				cfg, err = app.LoadConfig(app.Layers{EnvFile: ef, Flags: l.Flags})
				if err != nil {
					return &exitError{2, err.Error()}
				}
				return o.redeploy(c.Context, cfg, l)
			}),
		},
		{
			Name:  "nuke",
			Usage: "stop the node and remove runtime state (pid, node.json, logs); --hard removes the data dir",
			Flags: append(configFlags(),
				&cli.BoolFlag{Name: "yes-really", Usage: "required"},
				&cli.BoolFlag{Name: "hard", Usage: "also delete the data dir (store, keys, credentials)"}),
			Action: withConfig(func(c *cli.Context, cfg app.Config, _ map[string]string) error {
				return o.nuke(cfg, c.Bool("yes-really"), c.Bool("hard"))
			}),
		},
		{
			Name:  "test-alert",
			Usage: "send a test alert email through the configured SMTP server",
			Flags: configFlags(),
			Action: withConfig(func(c *cli.Context, cfg app.Config, _ map[string]string) error {
				return o.testAlert(c.Context, cfg)
			}),
		},
		conformanceCommand(o),
		bootstrapCommand(o),
		tenantCommand(o),
		tokenCommand(o),
	}
}

// BinarySHA256 hashes the running executable, for reports.
func BinarySHA256() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	f, err := os.Open(exe)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// auditVerify checks the audit chains in the data dir's store.
func auditVerify(ctx context.Context, cfg app.Config, tenantID string, out io.Writer) error {
	st, err := app.OpenStorage(ctx, cfg, app.OpenOptions{})
	if err != nil {
		return &exitError{1, err.Error()}
	}
	defer st.Close()
	ids := []string{tenantID}
	if tenantID == "" {
		ts, err := st.ListTenants(ctx)
		if err != nil {
			return &exitError{1, err.Error()}
		}
		ids = ids[:0]
		for _, t := range ts {
			ids = append(ids, t.TenantID)
		}
	}
	failed := 0
	for _, id := range ids {
		n, err := st.VerifyAudit(ctx, id)
		if err != nil {
			failed++
			fmt.Fprintf(out, "FAIL %s: %v (after %d good records)\n", id, err, n)
			continue
		}
		if a, err := st.AuditAnchor(ctx, id); err == nil && a.Removed > 0 {
			fmt.Fprintf(out, "ok   %s: %d records, chain intact from anchor %s (%s; %d older records removed by retention)\n",
				id, n, a.AuditID, a.Time.UTC().Format(time.RFC3339), a.Removed)
			continue
		}
		fmt.Fprintf(out, "ok   %s: %d records, chain intact\n", id, n)
	}
	if failed > 0 {
		return &exitError{1, fmt.Sprintf("%d audit chain(s) failed verification", failed)}
	}
	return nil
}
