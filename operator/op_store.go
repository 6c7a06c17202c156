package operator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/agentos/agentos/app"
	"github.com/agentos/agentos/store"
	"github.com/agentos/agentos/store/postgres"
	"github.com/urfave/cli/v2"
)

// migrateCommand applies the embedded schema migrations of the configured
// store and says what it applied.
func migrateCommand(stdout io.Writer) *cli.Command {
	return &cli.Command{
		Name:  "migrate",
		Usage: "apply the storage schema migrations (PostgreSQL; bbolt needs none) and print what was applied",
		Flags: configFlags(),
		Action: func(c *cli.Context) error {
			cfg, _, err := loadConfig(c)
			if err != nil {
				return &exitError{2, err.Error()}
			}
			return migrate(c.Context, cfg, stdout)
		},
	}
}

func migrate(ctx context.Context, cfg app.Config, out io.Writer) error {
	url := app.StorePostgresURL(cfg)
	if url == "" {
		fmt.Fprintf(out, "%s: bbolt keeps no schema; nothing to migrate\n", app.DescribeStore(cfg))
		return nil
	}
	// Open without migrating (a schema that is behind is what this command
	// is for), then migrate and report.
	st, err := postgres.Open(ctx, url, postgres.Options{NoMigrate: true, AllowBehind: true})
	if err != nil {
		return &exitError{1, err.Error()}
	}
	defer st.Close()
	applied, err := st.Migrate(ctx)
	if err != nil {
		return &exitError{1, err.Error()}
	}
	if len(applied) == 0 {
		fmt.Fprintf(out, "%s: schema at version %d, nothing to apply\n", st.Describe(), postgres.SchemaVersion())
		return nil
	}
	for _, m := range applied {
		fmt.Fprintf(out, "applied %s\n", m)
	}
	fmt.Fprintf(out, "%s: schema at version %d\n", st.Describe(), postgres.SchemaVersion())
	return nil
}

// storeCommand groups the operator's store tools: check and compact.
func storeCommand(stdout io.Writer) *cli.Command {
	return &cli.Command{
		Name:  "store",
		Usage: "store tools: check (walk every page of the bbolt file), compact (reclaim free space)",
		Subcommands: []*cli.Command{
			{
				Name:  "check",
				Usage: "walk every page of the bbolt file (node stopped) and say whether it is damaged",
				Flags: configFlags(),
				Action: func(c *cli.Context) error {
					cfg, _, err := loadConfig(c)
					if err != nil {
						return &exitError{2, err.Error()}
					}
					return storeCheck(cfg, stdout)
				},
			},
			compactCommand(stdout),
		},
	}
}

// compactCommand is `agentos compact` (also `agentos store compact`).
func compactCommand(stdout io.Writer) *cli.Command {
	return &cli.Command{
		Name:  "compact",
		Usage: "rewrite the bbolt file without its free pages (node stopped) and print the sizes before and after; PostgreSQL reclaims space with autovacuum",
		Flags: append(configFlags(), &cli.BoolFlag{Name: "keep-backup", Usage: "keep the old file as agentos.db.pre-compact-<time>"}),
		Action: func(c *cli.Context) error {
			cfg, _, err := loadConfig(c)
			if err != nil {
				return &exitError{2, err.Error()}
			}
			return compactStore(cfg, c.Bool("keep-backup"), stdout)
		},
	}
}

func storeCheck(cfg app.Config, out io.Writer) error {
	path := app.StoreFile(cfg)
	if path == "" {
		fmt.Fprintf(out, "%s: PostgreSQL checks its own pages (data checksums, amcheck); nothing to walk here\n", app.DescribeStore(cfg))
		return nil
	}
	start := time.Now()
	if err := store.Check(path, time.Second); err != nil {
		if errors.Is(err, store.ErrLocked) {
			return &exitError{1, fmt.Sprintf("%s is held by a running node: stop it first", path)}
		}
		return &exitError{1, err.Error()}
	}
	fi, _ := os.Stat(path)
	fmt.Fprintf(out, "ok %s: %s, every page walked in %s\n", path, humanBytes(fi.Size()), time.Since(start).Round(time.Millisecond))
	return nil
}

func compactStore(cfg app.Config, keepBackup bool, out io.Writer) error {
	path := app.StoreFile(cfg)
	if path == "" {
		fmt.Fprintf(out, "%s: PostgreSQL reuses the space of swept rows after autovacuum (VACUUM FULL or pg_repack give it back to the disk); nothing to compact here\n", app.DescribeStore(cfg))
		return nil
	}
	res, err := store.Compact(path, store.CompactOptions{KeepBackup: keepBackup})
	if err != nil {
		return &exitError{1, err.Error()}
	}
	saved := res.SizeBefore - res.SizeAfter
	fmt.Fprintf(out, "compacted %s: %s -> %s (%s reclaimed), %d keys, checked in full, %s\n", path, humanBytes(res.SizeBefore),
		humanBytes(res.SizeAfter), humanBytes(saved), res.Keys, res.Duration.Round(time.Millisecond))
	if res.Backup != "" {
		fmt.Fprintf(out, "the old file is kept as %s\n", res.Backup)
	}
	return nil
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30 || n <= -(1<<30):
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20 || n <= -(1<<20):
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%d KiB", n>>10)
	}
}
