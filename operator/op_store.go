package operator

import (
	"context"
	"fmt"
	"io"

	"github.com/agentos/agentos/app"
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
