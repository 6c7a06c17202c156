package operator

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/agentos/agentos/app"
	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/stacka/admin"
	"github.com/urfave/cli/v2"
)

// apiFlags locate the node and the credential of admin commands.
func apiFlags() []cli.Flag {
	return append(configFlags(),
		&cli.StringFlag{Name: "url", Usage: "Stack A base URL (default: from <data-dir>/node.json)"},
		&cli.StringFlag{Name: "api-key", Usage: "platform admin key (default: $AGENTOS_API_KEY, then credentials.json)"},
	)
}

// adminCall runs one admin API call and prints the JSON answer.
func (o *operator) adminCall(c *cli.Context, method, path string, body any) (map[string]any, error) {
	cfg, _, err := loadConfig(c)
	if err != nil {
		return nil, &exitError{2, err.Error()}
	}
	t, err := resolveTarget(cfg, c.String("url"), c.String("api-key"))
	if err != nil {
		return nil, &exitError{1, err.Error()}
	}
	if t.AdminKey == "" {
		return nil, &exitError{2, "no admin key: pass --api-key or set AGENTOS_API_KEY (prod: create one with `agentos bootstrap`)"}
	}
	var out map[string]any
	if err := newAPIClient(t.AdminKey).do(c.Context, method, t.Node.StackAURL+path, body, &out); err != nil {
		return nil, &exitError{1, err.Error()}
	}
	delete(out, "correlation_id")
	raw, _ := json.MarshalIndent(out, "", "  ")
	fmt.Fprintln(o.out, string(raw))
	return out, nil
}

// interspersed returns the positional arguments of c and applies flags
// written after them (urfave/cli stops parsing flags at the first
// positional argument; operators write `tenant update tnt_x --name y`).
func interspersed(c *cli.Context) ([]string, error) {
	rest := c.Args().Slice()
	if !slices.ContainsFunc(rest, func(a string) bool { return strings.HasPrefix(a, "-") }) {
		return rest, nil
	}
	fs := flag.NewFlagSet(c.Command.Name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	for _, f := range c.Command.Flags {
		if err := f.Apply(fs); err != nil {
			return nil, err
		}
	}
	var pos []string
	for len(rest) > 0 {
		if err := fs.Parse(rest); err != nil {
			return nil, &exitError{2, err.Error()}
		}
		rest = fs.Args()
		if len(rest) > 0 {
			pos = append(pos, rest[0])
			rest = rest[1:]
		}
	}
	var err error
	fs.Visit(func(f *flag.Flag) {
		names := []string{f.Name}
		for _, cf := range c.Command.Flags {
			if slices.Contains(cf.Names(), f.Name) {
				names = cf.Names() // aliases too: -n sets --lines
			}
		}
		for _, n := range names {
			if e := c.Set(n, f.Value.String()); e != nil && err == nil {
				err = &exitError{2, e.Error()}
			}
		}
	})
	return pos, err
}

// jsonFlag decodes an inline JSON flag value ("@file" is not supported:
// shells can do `"$(cat f)"`).
func jsonFlag(c *cli.Context, name string) (json.RawMessage, error) {
	v := c.String(name)
	if v == "" {
		return nil, nil
	}
	if !json.Valid([]byte(v)) {
		return nil, &exitError{2, fmt.Sprintf("--%s: not valid JSON", name)}
	}
	return json.RawMessage(v), nil
}

func tenantCommand(o *operator) *cli.Command {
	arg := func(c *cli.Context) (string, error) {
		pos, err := interspersed(c)
		if err != nil {
			return "", err
		}
		if len(pos) == 0 || pos[0] == "" {
			return "", &exitError{2, "tenant id required"}
		}
		return url.PathEscape(pos[0]), nil
	}
	return &cli.Command{
		Name:  "tenant",
		Usage: "manage tenants through the admin API of the running node",
		Subcommands: []*cli.Command{
			{
				Name: "create", Usage: "create a tenant",
				Flags: append(apiFlags(),
					&cli.StringFlag{Name: "id", Usage: "tenant id (tnt_…; default: generated)"},
					&cli.StringFlag{Name: "name", Usage: "display name (required)"},
					&cli.StringFlag{Name: "plan-tier", Value: core.PlanFree},
					&cli.StringFlag{Name: "quotas", Usage: "quotas JSON (CONTRACT §2.1)"},
					&cli.StringFlag{Name: "entitlements", Usage: "entitlements JSON (CONTRACT §2.1)"}),
				Action: func(c *cli.Context) error {
					if _, err := interspersed(c); err != nil {
						return err
					}
					if c.String("name") == "" {
						return &exitError{2, "--name is required"}
					}
					tc := map[string]any{"name": c.String("name"), "plan_tier": c.String("plan-tier")}
					if id := c.String("id"); id != "" {
						tc["tenant_id"] = id
					}
					for _, f := range []string{"quotas", "entitlements"} {
						v, err := jsonFlag(c, f)
						if err != nil {
							return err
						}
						if v != nil {
							tc[f] = v
						}
					}
					_, err := o.adminCall(c, http.MethodPost, "/v1/admin/tenants", map[string]any{"tenant_create": tc})
					return err
				},
			},
			{
				Name: "list", Usage: "list tenants", Flags: apiFlags(),
				Action: func(c *cli.Context) error {
					_, err := o.adminCall(c, http.MethodGet, "/v1/admin/tenants", nil)
					return err
				},
			},
			{
				Name: "show", Usage: "show a tenant", ArgsUsage: "<tenant_id>", Flags: apiFlags(),
				Action: func(c *cli.Context) error {
					id, err := arg(c)
					if err != nil {
						return err
					}
					_, err = o.adminCall(c, http.MethodGet, "/v1/admin/tenants/"+id, nil)
					return err
				},
			},
			{
				Name: "update", Usage: "change a tenant (merge)", ArgsUsage: "<tenant_id>",
				Flags: append(apiFlags(),
					&cli.StringFlag{Name: "name"}, &cli.StringFlag{Name: "status", Usage: "active|disabled"},
					&cli.StringFlag{Name: "plan-tier"},
					&cli.StringFlag{Name: "quotas", Usage: `quotas JSON, merged, e.g. '{"runs":{"max_concurrent_runs":20}}'`},
					&cli.StringFlag{Name: "entitlements", Usage: "entitlements JSON, merged"}),
				Action: func(c *cli.Context) error {
					id, err := arg(c)
					if err != nil {
						return err
					}
					tu := map[string]any{}
					for _, f := range []string{"name", "status", "plan-tier"} {
						if c.IsSet(f) {
							tu[strings.ReplaceAll(f, "-", "_")] = c.String(f)
						}
					}
					for _, f := range []string{"quotas", "entitlements"} {
						v, err := jsonFlag(c, f)
						if err != nil {
							return err
						}
						if v != nil {
							tu[f] = v
						}
					}
					if len(tu) == 0 {
						return &exitError{2, "nothing to change: give --name, --status, --plan-tier, --quotas or --entitlements"}
					}
					_, err = o.adminCall(c, http.MethodPatch, "/v1/admin/tenants/"+id, map[string]any{"tenant_update": tu})
					return err
				},
			},
			{
				Name: "disable", Usage: "disable a tenant (its requests get 403)", ArgsUsage: "<tenant_id>", Flags: apiFlags(),
				Action: func(c *cli.Context) error {
					id, err := arg(c)
					if err != nil {
						return err
					}
					_, err = o.adminCall(c, http.MethodPatch, "/v1/admin/tenants/"+id, map[string]any{"tenant_update": map[string]any{"status": "disabled"}})
					return err
				},
			},
		},
	}
}

func tokenCommand(o *operator) *cli.Command {
	args := func(c *cli.Context, n int) ([]string, error) {
		pos, err := interspersed(c)
		if err != nil {
			return nil, err
		}
		if len(pos) < n {
			return nil, &exitError{2, fmt.Sprintf("want %d argument(s): %s", n, c.Command.ArgsUsage)}
		}
		out := make([]string, n)
		for i := range out {
			out[i] = url.PathEscape(pos[i])
		}
		return out, nil
	}
	secretNote := func(out map[string]any) {
		if _, ok := out["secret"]; ok {
			fmt.Fprintln(o.out, "the secret above is shown once: store it now (only its hash is kept)")
		}
	}
	return &cli.Command{
		Name:  "token",
		Usage: "manage API keys through the admin API of the running node",
		Subcommands: []*cli.Command{
			{
				Name: "issue", Usage: "issue a key", ArgsUsage: "<tenant_id>",
				Flags: append(apiFlags(),
					&cli.StringFlag{Name: "principal", Usage: "principal id (usr_… or svc_…; required)"},
					&cli.StringFlag{Name: "type", Value: "user", Usage: "user|service"},
					&cli.StringFlag{Name: "display-name"},
					&cli.StringFlag{Name: "scopes", Usage: "comma-separated scopes"},
					&cli.StringFlag{Name: "roles", Usage: "comma-separated roles", Value: core.RoleTenantUser},
					&cli.DurationFlag{Name: "ttl", Usage: "expire after (e.g. 720h); default never"}),
				Action: func(c *cli.Context) error {
					a, err := args(c, 1)
					if err != nil {
						return err
					}
					if c.String("principal") == "" {
						return &exitError{2, "--principal is required"}
					}
					tc := map[string]any{"principal_id": c.String("principal"), "principal_type": c.String("type"),
						"scopes": nonNil(app.SplitList(c.String("scopes"))), "roles": nonNil(app.SplitList(c.String("roles")))}
					if d := c.String("display-name"); d != "" {
						tc["display_name"] = d
					}
					if ttl := c.Duration("ttl"); ttl > 0 {
						tc["expires_at"] = time.Now().Add(ttl).UTC().Format(time.RFC3339)
					}
					out, err := o.adminCall(c, http.MethodPost, "/v1/admin/tenants/"+a[0]+"/tokens", map[string]any{"token_create": tc})
					if err == nil {
						secretNote(out)
					}
					return err
				},
			},
			{
				Name: "list", Usage: "list a tenant's keys (never secrets)", ArgsUsage: "<tenant_id>", Flags: apiFlags(),
				Action: func(c *cli.Context) error {
					a, err := args(c, 1)
					if err != nil {
						return err
					}
					_, err = o.adminCall(c, http.MethodGet, "/v1/admin/tenants/"+a[0]+"/tokens", nil)
					return err
				},
			},
			{
				Name: "rotate", Usage: "rotate a key: new secret, the old one stops working", ArgsUsage: "<tenant_id> <token_id>", Flags: apiFlags(),
				Action: func(c *cli.Context) error {
					a, err := args(c, 2)
					if err != nil {
						return err
					}
					out, err := o.adminCall(c, http.MethodPost, "/v1/admin/tenants/"+a[0]+"/tokens/"+a[1]+":rotate", nil)
					if err == nil {
						secretNote(out)
					}
					return err
				},
			},
			{
				Name: "revoke", Usage: "revoke a key", ArgsUsage: "<tenant_id> <token_id>", Flags: apiFlags(),
				Action: func(c *cli.Context) error {
					a, err := args(c, 2)
					if err != nil {
						return err
					}
					_, err = o.adminCall(c, http.MethodDelete, "/v1/admin/tenants/"+a[0]+"/tokens/"+a[1], nil)
					return err
				},
			},
		},
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// BootstrapTenantID is the tenant `agentos bootstrap` creates to hold the
// first platform admin in prod.
const BootstrapTenantID = "tnt_platform"

// Bootstrap creates the first platform admin key directly in the data
// dir's store (the node must be stopped: bbolt allows one process). It
// refuses when an active platform admin key exists. The secret is returned
// once.
func Bootstrap(ctx context.Context, cfg app.Config, tenantID, principalID string) (core.Token, string, error) {
	st, err := app.OpenStorage(ctx, cfg, app.OpenOptions{LockTimeout: time.Second})
	if err != nil {
		if _, ok := runningNode(cfg); ok {
			return core.Token{}, "", errors.New("the node is running and holds the store: stop it with `agentos nuke --yes-really` (data is kept), run `agentos bootstrap`, then `agentos up`")
		}
		return core.Token{}, "", fmt.Errorf("open store: %w", err)
	}
	defer st.Close()
	tenants, err := st.ListTenants(ctx)
	if err != nil {
		return core.Token{}, "", err
	}
	for _, t := range tenants {
		toks, err := st.ListTokens(ctx, t.TenantID)
		if err != nil {
			return core.Token{}, "", err
		}
		for _, k := range toks {
			if k.Active(time.Now()) && slices.Contains(k.Roles, core.RolePlatformAdmin) {
				return core.Token{}, "", fmt.Errorf("a platform admin exists already (%s in %s, key %s): use it, or `agentos token issue`", k.PrincipalID, k.TenantID, k.TokenID)
			}
		}
	}
	api := &admin.AdminAPI{Tenants: st, Tokens: st, Audit: st}
	sys := core.Auth{TenantID: tenantID, Principal: core.Principal{PrincipalID: "svc_agentos_bootstrap", PrincipalType: "service"},
		Scopes: core.AllScopes, Roles: []string{core.RolePlatformAdmin}, PolicyContext: core.DefaultPolicyContext(cfg.Region)}
	if _, err := st.GetTenant(ctx, tenantID); core.IsCode(err, core.CodeNotFound) {
		if _, err := api.CreateTenant(ctx, sys, admin.TenantCreate{TenantID: tenantID, Name: "Platform operators", PlanTier: "platform",
			Entitlements: &core.Entitlements{ModelTiersAllowed: []string{}, ModelBackendsAllowed: []string{}, ToolIDsAllowed: []string{}}}); err != nil {
			return core.Token{}, "", fmt.Errorf("create tenant %s: %w", tenantID, err)
		}
	} else if err != nil {
		return core.Token{}, "", err
	}
	return api.IssueToken(ctx, sys, tenantID, admin.TokenCreate{PrincipalID: principalID, PrincipalType: "user",
		DisplayName: "Platform Admin", Scopes: core.AllScopes, Roles: []string{core.RolePlatformAdmin}})
}

func bootstrapCommand(o *operator) *cli.Command {
	return &cli.Command{
		Name:  "bootstrap",
		Usage: "create the first platform admin key (prod); prints the key once",
		Flags: append(configFlags(),
			&cli.StringFlag{Name: "tenant-id", Value: BootstrapTenantID, Usage: "tenant that holds the platform admin"},
			&cli.StringFlag{Name: "principal-id", Value: app.PlatformAdminID}),
		Action: func(c *cli.Context) error {
			cfg, _, err := loadConfig(c)
			if err != nil {
				return &exitError{2, err.Error()}
			}
			tok, secret, err := Bootstrap(c.Context, cfg, c.String("tenant-id"), c.String("principal-id"))
			if err != nil {
				return &exitError{1, "bootstrap: " + err.Error()}
			}
			fmt.Fprintf(o.out, "platform admin %s created in tenant %s (key %s)\n\n  %s\n\n", tok.PrincipalID, tok.TenantID, tok.TokenID, secret)
			fmt.Fprintln(o.out, "This key is shown once and only its hash is stored. Keep it in your secret manager and")
			fmt.Fprintln(o.out, "export AGENTOS_API_KEY=<key> for `agentos up|validate|status|tenant|token`.")
			return nil
		},
	}
}
