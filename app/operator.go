package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"github.com/agentos/agentos/store"
	"github.com/urfave/cli/v2"
)

// AllowPublicAdminEnv, set to 1/true (or `up --allow-public-admin`), lets a
// prod node bind Stack A, which serves the admin API, to a non-loopback
// address.
const AllowPublicAdminEnv = "AGENTOS_ALLOW_PUBLIC_ADMIN"

// operatorCommands are the operator UX commands (up, validate, …).
func operatorCommands(build BuildInfo, stdout, stderr io.Writer) []*cli.Command {
	o := &operator{build: build, out: stdout, errw: stderr, reportsDir: ReportsDir}
	withConfig := func(fn func(c *cli.Context, cfg Config, envFile map[string]string) error) cli.ActionFunc {
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
			Action: withConfig(func(c *cli.Context, cfg Config, envFile map[string]string) error {
				l := launch{Flags: explicitFlags(c), EnvFile: absPath(c.String("env-file")), AllowPublicAdmin: c.Bool("allow-public-admin")}
				return o.up(c.Context, cfg, envFile, upOptions{Foreground: c.Bool("foreground"), Launch: l, EnvFilePath: c.String("env-file")})
			}),
		},
		{
			Name:  "validate",
			Usage: "run the gates of CONTRACT §7 against the running node (non-zero when one fails)",
			Flags: append(configFlags(), keyFlags...),
			Action: withConfig(func(c *cli.Context, cfg Config, _ map[string]string) error {
				return o.validate(c.Context, cfg, c.String("url"), c.String("api-key"))
			}),
		},
		{
			Name:  "status",
			Usage: "process, ports, health, and counts of tenants and runs",
			Flags: append(configFlags(), keyFlags[1]),
			Action: withConfig(func(c *cli.Context, cfg Config, _ map[string]string) error {
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
			Action: withConfig(func(c *cli.Context, cfg Config, _ map[string]string) error {
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
			Action: withConfig(func(c *cli.Context, cfg Config, envFile map[string]string) error {
				l, _ := readLaunch(cfg)
				for k, v := range explicitFlags(c) {
					l.Flags[k] = v
				}
				if c.IsSet("env-file") || l.EnvFile == "" {
					l.EnvFile = absPath(c.String("env-file"))
				}
				ef, err := ReadEnvFile(l.EnvFile)
				if err != nil {
					return &exitError{2, err.Error()}
				}
				cfg, err = LoadConfig(Layers{EnvFile: ef, Flags: l.Flags})
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
			Action: withConfig(func(c *cli.Context, cfg Config, _ map[string]string) error {
				return o.nuke(cfg, c.Bool("yes-really"), c.Bool("hard"))
			}),
		},
		{
			Name:  "test-alert",
			Usage: "send a test alert email through the configured SMTP server",
			Flags: configFlags(),
			Action: withConfig(func(c *cli.Context, cfg Config, _ map[string]string) error {
				return o.testAlert(c.Context, cfg)
			}),
		},
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

// CheckProd refuses a prod start with demo secrets or plain-text secrets
// in the env file.
func CheckProd(cfg Config, envFile map[string]string) error {
	if cfg.Mode != ModeProd {
		return nil
	}
	if bad := PlaintextSecretsInEnvFile(envFile); len(bad) > 0 {
		return fmt.Errorf("prod mode refuses plain-text secrets in %s: %s (inject them through the environment or an owner-only file)", EnvFileName, strings.Join(bad, ", "))
	}
	if _, err := os.Stat(cfg.Path(CredentialsFileName)); err == nil {
		return fmt.Errorf("prod mode refuses to start with demo credentials present (%s): remove them and use `agentos bootstrap`", cfg.Path(CredentialsFileName))
	}
	if !allowPublicAdmin(envFile) {
		if host, _, err := net.SplitHostPort(cfg.StackAAddr); err == nil && !loopbackHost(host) {
			return fmt.Errorf("prod mode refuses an open admin surface: Stack A (admin API) would listen on %s; bind it to 127.0.0.1 behind a proxy, or pass --allow-public-admin (%s=1) to accept it", cfg.StackAAddr, AllowPublicAdminEnv)
		}
	}
	if bad := plaintextProviderKeys(cfg.ProvidersFile); len(bad) > 0 {
		return fmt.Errorf("prod mode refuses provider keys in plain text in %s (%s): use api_key_env", cfg.ProvidersFile, strings.Join(bad, ", "))
	}
	if bad := exposedKeyFiles(cfg.ProvidersFile); len(bad) > 0 {
		return fmt.Errorf("prod mode refuses provider key files readable by others: %s (chmod 600, owned by the service user)", strings.Join(bad, ", "))
	}
	return nil
}

func allowPublicAdmin(envFile map[string]string) bool {
	v, ok := os.LookupEnv(AllowPublicAdminEnv)
	if !ok {
		v = envFile[AllowPublicAdminEnv]
	}
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "true", "yes":
		return true
	}
	return false
}

// loopbackHost reports a host that only local clients reach. An empty
// host (":8080") listens everywhere.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// providerEntries reads the providers of a providers file as raw objects;
// nil when there is no file or it does not parse (the node's own startup
// reports those).
func providerEntries(path string) []map[string]any {
	if path == "" {
		return nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var pf struct {
		Providers []map[string]any `json:"providers"`
	}
	if json.Unmarshal(raw, &pf) != nil {
		return nil
	}
	return pf.Providers
}

// plaintextProviderKeys names the providers of a providers file that carry
// a literal api_key instead of api_key_env.
func plaintextProviderKeys(path string) []string {
	var bad []string
	for i, p := range providerEntries(path) {
		for _, k := range []string{"api_key", "apiKey", "key", "token"} {
			if v, ok := p[k].(string); ok && v != "" {
				bad = append(bad, fmt.Sprintf("providers[%d].%s", i, k))
			}
		}
	}
	return bad
}

// exposedKeyFiles names the api_key_file entries of a providers file that
// group or others may read.
func exposedKeyFiles(path string) []string {
	var bad []string
	for i, p := range providerEntries(path) {
		file, _ := p["api_key_file"].(string)
		if file == "" {
			continue
		}
		if fi, err := os.Stat(file); err == nil && fi.Mode().Perm()&0o077 != 0 {
			bad = append(bad, fmt.Sprintf("providers[%d].api_key_file %s (mode %04o)", i, file, fi.Mode().Perm()))
		}
	}
	return bad
}

// auditVerify checks the audit chains in the data dir's store.
func auditVerify(ctx context.Context, cfg Config, tenantID string, out io.Writer) error {
	st, err := store.Open(cfg.Path("agentos.db"), store.Options{})
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
		fmt.Fprintf(out, "ok   %s: %d records, chain intact\n", id, n)
	}
	if failed > 0 {
		return &exitError{1, fmt.Sprintf("%d audit chain(s) failed verification", failed)}
	}
	return nil
}
