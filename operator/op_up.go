package operator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/agentos/agentos/app"
	"github.com/urfave/cli/v2"
)

// operator runs the operator commands; out is what the user reads.
type operator struct {
	build      app.BuildInfo
	out        io.Writer
	errw       io.Writer
	reportsDir string
}

// launch is how `up` started the node: the flags set explicitly (secrets
// left out) and the env file, kept in <data-dir>/launch.json so that
// `redeploy` starts the same configuration.
type launch struct {
	Flags            map[string]string `json:"flags"`
	EnvFile          string            `json:"env_file"`
	AllowPublicAdmin bool              `json:"allow_public_admin"`
}

// explicitFlags are the §7.1 settings given as flags on this command.
func explicitFlags(c *cli.Context) map[string]string {
	flags := map[string]string{}
	for _, s := range app.Settings() {
		if c.IsSet(s.Flag) {
			flags[s.Flag] = c.String(s.Flag)
		}
	}
	return flags
}

// childArgs turns a launch into `serve` flags; secret settings go to the
// child's environment instead, where `ps` does not show them.
func childArgs(l launch) (args, env []string) {
	for _, s := range app.Settings() {
		v, ok := l.Flags[s.Flag]
		if !ok {
			continue
		}
		if s.Secret {
			env = append(env, s.Env+"="+v)
			continue
		}
		args = append(args, "--"+s.Flag+"="+v)
	}
	if l.EnvFile != "" {
		args = append(args, "--env-file="+l.EnvFile)
	}
	if l.AllowPublicAdmin {
		env = append(env, app.AllowPublicAdminEnv+"=1")
	}
	return args, env
}

func saveLaunch(cfg app.Config, l launch) error {
	keep := launch{Flags: map[string]string{}, EnvFile: l.EnvFile, AllowPublicAdmin: l.AllowPublicAdmin}
	for _, s := range app.Settings() {
		if v, ok := l.Flags[s.Flag]; ok && !s.Secret {
			keep.Flags[s.Flag] = v
		}
	}
	raw, _ := json.MarshalIndent(keep, "", "  ")
	return os.WriteFile(cfg.Path(launchFileName), raw, 0o600)
}

func readLaunch(cfg app.Config) (launch, bool) {
	var l launch
	raw, err := os.ReadFile(cfg.Path(launchFileName))
	if err != nil || json.Unmarshal(raw, &l) != nil {
		return launch{Flags: map[string]string{}}, false
	}
	if l.Flags == nil {
		l.Flags = map[string]string{}
	}
	return l, true
}

// upOptions are the flags of `up` beyond the §7.1 settings.
type upOptions struct {
	Foreground bool
	Launch     launch
	// EnvFileWritten reports that this run wrote .agentos.env.
	EnvFilePath string
}

// failAction prints the failing check, the log tail and the next command,
// writes the report, and returns the exit error.
func (o *operator) failAction(rep *Report, cfg app.Config, err error, next string) error {
	rep.fail(next)
	fmt.Fprintf(o.out, "\nagentos %s FAILED: %v\n", rep.Action, err)
	if lines := tailLines(LogPath(cfg), 15); len(lines) > 0 {
		fmt.Fprintf(o.out, "last log lines (%s):\n", LogPath(cfg))
		for _, l := range lines {
			fmt.Fprintf(o.out, "  %s\n", l)
		}
	}
	if next != "" {
		fmt.Fprintf(o.out, "next: %s\n", next)
	}
	if md, js, werr := rep.write(o.reportsDir); werr == nil {
		fmt.Fprintf(o.out, "reports: %s, %s\n", md, js)
	}
	return &exitError{1, ""}
}

// up runs the phases preflight, boot, seed, wire, validate and report.
func (o *operator) up(ctx context.Context, cfg app.Config, envFile map[string]string, opts upOptions) error {
	rep := newReport("up", cfg, o.build)
	fmt.Fprintf(o.out, "agentos up — mode %s, profile %s, data dir %s, store %s\n", cfg.Mode, cfg.Profile, cfg.DataDir, app.DescribeStore(cfg))
	pr := &progress{out: o.out, report: rep, total: 6}
	begin := time.Now()

	if err := pr.run("preflight", func(ph *phase) error { return preflight(ph, cfg, envFile, opts.Launch.AllowPublicAdmin) }); err != nil {
		return o.failAction(rep, cfg, err, "fix the failing check above, then run `agentos up` again")
	}
	if opts.EnvFilePath != "" {
		if _, err := os.Stat(opts.EnvFilePath); os.IsNotExist(err) {
			if err := app.WriteEnvFile(opts.EnvFilePath, cfg); err == nil {
				fmt.Fprintf(o.out, "      wrote %s (edit it to change the defaults)\n", opts.EnvFilePath)
			}
		}
	}

	// In the foreground the node lives in this process: from before it
	// boots, Ctrl-C and SIGTERM end it through its own shutdown (node.json
	// and the pid file removed, the store closed), never by the signal's
	// default action. A signal during seed, wire or validate cancels them.
	phases := ctx
	if opts.Foreground {
		var stop context.CancelFunc
		phases, stop = signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		defer stop()
	}

	var nf app.NodeFile
	var fg *app.Node
	if err := pr.run("boot", func(ph *phase) error {
		var err error
		nf, fg, err = o.boot(ctx, ph, cfg, opts)
		return err
	}); err != nil {
		return o.failAction(rep, cfg, err, "agentos logs all; then `agentos nuke --yes-really` and `agentos up`")
	}
	rep.setNode(nf)
	if fg != nil {
		defer fg.Close()
		defer os.Remove(cfg.Path(PIDFileName))
	}
	if err := o.afterBoot(phases, pr, rep, cfg, nf); err != nil {
		return err
	}
	validated := time.Since(begin)
	fmt.Fprintf(o.out, "[6/6] report\n")
	md, js, err := rep.write(o.reportsDir)
	if err != nil {
		return &exitError{1, err.Error()}
	}
	rep.Phases = append(rep.Phases, PhaseResult{Name: "report", Status: "ok", Checks: []Check{}})
	fmt.Fprintf(o.out, "      wrote %s, %s\n", md, js)
	o.summary(ctx, rep, cfg, nf, validated, md, js)
	if fg != nil {
		fmt.Fprintf(o.out, "\nnode running in the foreground (pid %d); Ctrl-C stops it\n", os.Getpid())
		select {
		case <-phases.Done():
		case err := <-fg.Errors():
			return &exitError{1, "router failed: " + err.Error()}
		}
		fmt.Fprintln(o.out, "stopping")
	}
	return nil
}

// afterBoot runs seed, wire and validate, shared by up and redeploy.
func (o *operator) afterBoot(ctx context.Context, pr *progress, rep *Report, cfg app.Config, nf app.NodeFile) error {
	var target nodeTarget
	if err := pr.run("seed", func(ph *phase) error {
		var err error
		target, err = seedPhase(ctx, ph, cfg, nf, rep)
		return err
	}); err != nil {
		return o.failAction(rep, cfg, err, "agentos logs stack-a; then `agentos redeploy`")
	}
	if err := pr.run("wire", func(ph *phase) error { return wirePhase(ctx, ph, cfg, nf, target) }); err != nil {
		return o.failAction(rep, cfg, err, "check --stack-b-url / --peers-file, then `agentos redeploy`; details: agentos logs all")
	}
	if err := pr.run("validate", func(ph *phase) error { return validateGates(ctx, ph, rep, nf, target) }); err != nil {
		return o.failAction(rep, cfg, err, "agentos logs all; fix, then `agentos validate` (or `agentos redeploy`)")
	}
	return nil
}

// validateGates runs the health and smoke gates into the report.
func validateGates(ctx context.Context, ph *phase, rep *Report, nf app.NodeFile, t nodeTarget) error {
	ph.sink = &rep.Health
	_, herr := healthGate(ctx, ph, nf, t.httpClient())
	ph.sink = &rep.Smoke
	sres, serr := smokeGate(ctx, ph, nf, t)
	ph.sink = nil
	if rep.Details == nil {
		rep.Details = map[string]any{}
	}
	rep.Details["validation_run_id"] = sres.RunID
	ph.summarize("services healthy %d/3, smoke %d/%d", countOK(rep.Health), sres.Passed, sres.Total)
	return errors.Join(herr, serr)
}

func countOK(cs []Check) int {
	n := 0
	for _, c := range cs {
		if c.Status == "ok" {
			n++
		}
	}
	return n
}

// preflight checks the configuration, ports, data dir and disk.
func preflight(ph *phase, cfg app.Config, envFile map[string]string, allowPublicAdmin bool) error {
	var errs []error
	keep := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	keep(ph.check("config valid", func() (string, error) {
		if err := cfg.Validate(); err != nil {
			return "", err
		}
		if allowPublicAdmin {
			os.Setenv(app.AllowPublicAdminEnv, "1")
		}
		if err := app.CheckProd(cfg, envFile); err != nil {
			return "", err
		}
		return fmt.Sprintf("mode %s, profile %s", cfg.Mode, cfg.Profile), nil
	}))
	running, ours := runningNode(cfg)
	keep(ph.check("ports", func() (string, error) {
		if ours {
			return fmt.Sprintf("already ours 3/3 (node pid %d)", running.PID), nil
		}
		free := 0
		var busy []string
		for _, a := range []string{cfg.StackAAddr, cfg.StackBAddr, cfg.FedAddr} {
			ln, err := net.Listen("tcp", a)
			if err != nil {
				busy = append(busy, a)
				continue
			}
			ln.Close()
			free++
		}
		if len(busy) > 0 {
			return "", fmt.Errorf("free %d/3; in use by another process: %s (pick others with --stack-a-addr/--stack-b-addr/--fed-addr)", free, strings.Join(busy, ", "))
		}
		return "free 3/3", nil
	}))
	keep(ph.check("data dir writable", func() (string, error) {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return "", err
		}
		f, err := os.CreateTemp(cfg.DataDir, ".preflight-*")
		if err != nil {
			return "", err
		}
		f.Close()
		os.Remove(f.Name())
		return absPath(cfg.DataDir), nil
	}))
	keep(ph.check("disk space", func() (string, error) {
		var st syscall.Statfs_t
		if err := syscall.Statfs(cfg.DataDir, &st); err != nil {
			return "", err
		}
		free := st.Bavail * uint64(st.Bsize)
		const need = 64 << 20
		if free < need {
			return "", fmt.Errorf("%d MiB free under %s, want at least %d MiB", free>>20, cfg.DataDir, need>>20)
		}
		return fmt.Sprintf("%.1f GiB free", float64(free)/(1<<30)), nil
	}))
	for _, f := range []struct{ name, path string }{{"providers file", cfg.ProvidersFile}, {"peers file", cfg.PeersFile}} {
		if f.path == "" {
			continue
		}
		keep(ph.check(f.name+" readable", func() (string, error) {
			raw, err := os.ReadFile(f.path)
			if err != nil {
				return "", err
			}
			if !json.Valid(raw) {
				return "", fmt.Errorf("%s is not valid JSON", f.path)
			}
			return f.path, nil
		}))
	}
	ph.summarize("%d/%d checks", len(ph.res.Checks)-len(errs), len(ph.res.Checks))
	return errors.Join(errs...)
}

// boot starts the node (or reuses the running one) and waits for
// node.json and readiness on all three ports.
func (o *operator) boot(ctx context.Context, ph *phase, cfg app.Config, opts upOptions) (app.NodeFile, *app.Node, error) {
	if nf, ours := runningNode(cfg); ours {
		ph.note("node already running (pid %d), reusing it", nf.PID)
		n, err := waitReadyCheck(ctx, ph, nf)
		ph.summarize("reused pid %d, ready %d/3%s", nf.PID, n, clusterCheck(ctx, ph, cfg, nf))
		return nf, nil, err
	}
	_ = os.Remove(cfg.Path("node.json"))
	if opts.Foreground {
		return o.bootForeground(ctx, ph, cfg)
	}
	var bn *backgroundNode
	if err := ph.check("start node", func() (string, error) {
		args, env := childArgs(opts.Launch)
		var err error
		if bn, err = startBackground(cfg, args, env); err != nil {
			return "", err
		}
		_ = saveLaunch(cfg, opts.Launch)
		return fmt.Sprintf("pid %d, log %s, pid file %s", bn.PID, LogPath(cfg), cfg.Path(PIDFileName)), nil
	}); err != nil {
		return app.NodeFile{}, nil, err
	}
	var nf app.NodeFile
	if err := ph.check("node.json written", func() (string, error) {
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		var err error
		nf, err = waitNodeFile(wctx, cfg, bn.PID, bn.exited)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("A %s, B %s, fed %s", nf.StackAURL, nf.StackBURL, nf.FedURL), nil
	}); err != nil {
		return nf, nil, err
	}
	n, err := waitReadyCheck(ctx, ph, nf)
	ph.summarize("pid %d, ready %d/3%s", nf.PID, n, clusterCheck(ctx, ph, cfg, nf))
	return nf, nil, err
}

// clusterCheck, for a node on a shared store, records which live nodes it
// joined (or that it is the cluster's first) and returns a summary suffix.
func clusterCheck(ctx context.Context, ph *phase, cfg app.Config, nf app.NodeFile) string {
	if !nf.Cluster {
		return ""
	}
	var live int
	_ = ph.check("cluster", func() (string, error) {
		nodes, _, err := app.ClusterNodes(ctx, cfg)
		if err != nil {
			return "", err
		}
		live = len(nodes)
		others := []string{}
		for _, x := range nodes {
			if x.NodeID != nf.NodeID {
				others = append(others, x.NodeID+" ("+x.StackAURL+")")
			}
		}
		if len(others) == 0 {
			return fmt.Sprintf("node %s is the cluster's first live node", nf.NodeID), nil
		}
		return fmt.Sprintf("node %s joined %d live node(s): %s", nf.NodeID, len(others), strings.Join(others, ", ")), nil
	})
	return fmt.Sprintf(", cluster of %d live node(s)", live)
}

func waitReadyCheck(ctx context.Context, ph *phase, nf app.NodeFile) (int, error) {
	ready := 0
	err := ph.check("readiness", func() (string, error) {
		wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		var err error
		ready, err = waitReady(wctx, nodeURLs(nf))
		if err != nil {
			return "", fmt.Errorf("ready %d/3: %w", ready, err)
		}
		return fmt.Sprintf("ready %d/3", ready), nil
	})
	return ready, err
}

// bootForeground opens the node in this process; its logs go to the log
// file so the phases stay readable.
func (o *operator) bootForeground(ctx context.Context, ph *phase, cfg app.Config) (app.NodeFile, *app.Node, error) {
	var n *app.Node
	err := ph.check("start node in the foreground", func() (string, error) {
		if err := os.MkdirAll(filepath.Join(cfg.DataDir, LogDirName), 0o700); err != nil {
			return "", err
		}
		logf, err := os.OpenFile(LogPath(cfg), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return "", err
		}
		n = app.NewNode(cfg, o.build, NewLogger(logf, cfg.LogLevel))
		if err := n.Open(ctx); err != nil {
			return "", err
		}
		if cfg.Mode != app.ModeProd {
			if _, err := n.Seed(ctx); err != nil {
				n.Close()
				return "", fmt.Errorf("seed: %w", err)
			}
		}
		if err := os.WriteFile(cfg.Path(PIDFileName), []byte(fmt.Sprintf("%d\n", os.Getpid())), 0o600); err != nil {
			n.Close()
			return "", err
		}
		return fmt.Sprintf("pid %d, log %s", os.Getpid(), LogPath(cfg)), nil
	})
	if err != nil {
		return app.NodeFile{}, nil, err
	}
	nf, rerr := app.ReadNodeFile(cfg.DataDir)
	if rerr != nil {
		n.Close()
		return nf, nil, rerr
	}
	ready, err := waitReadyCheck(ctx, ph, nf)
	ph.summarize("pid %d (foreground), ready %d/3%s", nf.PID, ready, clusterCheck(ctx, ph, cfg, nf))
	if err != nil {
		n.Close()
		return nf, nil, err
	}
	return nf, n, nil
}

// seedPhase verifies what the node seeded (demo/dev) and counts it; prod
// seeds nothing and needs a key from `agentos bootstrap`.
func seedPhase(ctx context.Context, ph *phase, cfg app.Config, nf app.NodeFile, rep *Report) (nodeTarget, error) {
	t, _ := resolveTarget(cfg, nf.StackAURL, "")
	t.Node = nf
	if cfg.Mode == app.ModeProd {
		prodSeed(ph, t, rep)
		return t, nil
	}
	if err := ph.check("credentials file", func() (string, error) { return awaitSeedCredentials(ctx, cfg, nf, &t) }); err != nil {
		return t, err
	}
	rep.Seeded = &app.Seeded{DefaultTenantID: t.Creds.DefaultTenantID, PlatformAdminPrincipalID: t.Creds.PlatformAdmin.PrincipalID,
		TenantAdminPrincipalID: t.Creds.TenantAdmin.PrincipalID, SampleAgentIDs: []string{}, SampleToolIDs: []string{},
		CredentialsFile: absPath(cfg.Path(app.CredentialsFileName)), Created: []string{}}
	sc := seedCheck{ctx: ctx, base: nf.StackAURL, adm: newAPIClient(t.AdminKey), user: newAPIClient(t.Creds.TenantAdmin.APIKey), seeded: rep.Seeded}
	var errs []error
	for _, c := range []struct {
		name string
		fn   func() (string, error)
	}{{"tenants", sc.tenants}, {"principals with keys", sc.keys}, {"sample agents", sc.agents}, {"sample tools", sc.tools}} {
		if err := ph.check(c.name, c.fn); err != nil {
			errs = append(errs, err)
		}
	}
	ph.summarize("tenants %d, keys %d, agents %d, tools %d", sc.nTenants, sc.nKeys, sc.nAgents, sc.nTools)
	return t, errors.Join(errs...)
}

// prodSeed is the seed phase in prod: nothing is seeded; the platform
// admin key comes from AGENTOS_API_KEY (after `agentos bootstrap`).
func prodSeed(ph *phase, t nodeTarget, rep *Report) {
	rep.Seeded = &app.Seeded{SampleAgentIDs: []string{}, SampleToolIDs: []string{}, Created: []string{}}
	if t.AdminKey == "" {
		ph.skip("seed", "prod seeds nothing; create the first platform admin key with `agentos bootstrap`, then export AGENTOS_API_KEY")
	} else {
		ph.note("prod: nothing seeded; using the platform admin key from AGENTOS_API_KEY")
	}
	ph.summarize("prod: nothing seeded")
}

// awaitSeedCredentials waits (up to 15 s) until the node has written its
// credentials file and the tenant admin's key reads the sample agent, then
// takes the keys into t.
func awaitSeedCredentials(ctx context.Context, cfg app.Config, nf app.NodeFile, t *nodeTarget) (string, error) {
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := app.ReadCredentials(cfg.DataDir)
		if err == nil && c.TenantAdmin.APIKey != "" && c.PlatformAdmin.APIKey != "" {
			cl := newAPIClient(c.TenantAdmin.APIKey)
			if err = cl.do(ctx, http.MethodGet, nf.StackAURL+"/v1/agents/"+app.SampleAgentID, nil, nil); err == nil {
				t.Creds = c
				if t.AdminKey == "" || os.Getenv("AGENTOS_API_KEY") == "" {
					t.AdminKey = c.PlatformAdmin.APIKey
				}
				st, _ := os.Stat(cfg.Path(app.CredentialsFileName))
				return fmt.Sprintf("%s (mode %v), keys authenticate", cfg.Path(app.CredentialsFileName), st.Mode().Perm()), nil
			}
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("seed not complete after 15 s: %v", err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// seedCheck reads back what the demo seed made: one method per check of
// the seed phase, each counting what it found.
type seedCheck struct {
	ctx       context.Context
	base      string
	adm, user *apiClient
	seeded    *app.Seeded

	nTenants, nKeys, nAgents, nTools int
}

func (s *seedCheck) tenants() (string, error) {
	var out struct {
		Tenants []struct {
			TenantID string `json:"tenant_id"`
		} `json:"tenants"`
	}
	if err := s.adm.do(s.ctx, http.MethodGet, s.base+"/v1/admin/tenants", nil, &out); err != nil {
		return "", err
	}
	s.nTenants = len(out.Tenants)
	for _, x := range out.Tenants {
		if x.TenantID == app.DemoTenantID {
			return fmt.Sprintf("%d (default %s)", s.nTenants, app.DemoTenantID), nil
		}
	}
	return "", fmt.Errorf("%s missing among %d tenants", app.DemoTenantID, s.nTenants)
}

func (s *seedCheck) keys() (string, error) {
	var out struct {
		Tokens []struct {
			PrincipalID string `json:"principal_id"`
			RevokedAt   any    `json:"revoked_at"`
		} `json:"tokens"`
	}
	if err := s.adm.do(s.ctx, http.MethodGet, s.base+"/v1/admin/tenants/"+app.DemoTenantID+"/tokens", nil, &out); err != nil {
		return "", err
	}
	seen := map[string]bool{}
	for _, k := range out.Tokens {
		seen[k.PrincipalID] = true
	}
	s.nKeys = len(out.Tokens)
	if !seen[app.PlatformAdminID] || !seen[app.TenantAdminID] {
		return "", fmt.Errorf("want keys of %s and %s, have %v", app.PlatformAdminID, app.TenantAdminID, seen)
	}
	return fmt.Sprintf("%d principals, %d keys", len(seen), s.nKeys), nil
}

func (s *seedCheck) agents() (string, error) {
	var out struct {
		Agents []struct {
			AgentID string `json:"agent_id"`
		} `json:"agents"`
	}
	if err := s.user.do(s.ctx, http.MethodGet, s.base+"/v1/agents", nil, &out); err != nil {
		return "", err
	}
	s.nAgents = len(out.Agents)
	for _, a := range out.Agents {
		if a.AgentID == app.SampleAgentID {
			s.seeded.SampleAgentIDs = append(s.seeded.SampleAgentIDs, a.AgentID)
		}
	}
	if len(s.seeded.SampleAgentIDs) == 0 {
		return "", fmt.Errorf("%s missing", app.SampleAgentID)
	}
	return fmt.Sprintf("%d agent(s) incl. %s", s.nAgents, app.SampleAgentID), nil
}

func (s *seedCheck) tools() (string, error) {
	var out struct {
		Tools []struct {
			ToolID string `json:"tool_id"`
		} `json:"tools"`
	}
	if err := s.user.do(s.ctx, http.MethodGet, s.base+"/v1/tools", nil, &out); err != nil {
		return "", err
	}
	s.nTools = len(out.Tools)
	for _, x := range out.Tools {
		if x.ToolID == app.SampleToolID {
			s.seeded.SampleToolIDs = append(s.seeded.SampleToolIDs, x.ToolID)
		}
	}
	if len(s.seeded.SampleToolIDs) == 0 {
		return "", fmt.Errorf("%s missing", app.SampleToolID)
	}
	return fmt.Sprintf("%d tool(s) incl. %s", s.nTools, app.SampleToolID), nil
}

// wirePhase proves Stack A reaches Stack B and, when peers are
// configured, that they answer.
func wirePhase(ctx context.Context, ph *phase, cfg app.Config, nf app.NodeFile, t nodeTarget) error {
	var errs []error
	links, up := 0, 0
	links++
	if err := ph.check("Stack A reaches Stack B", func() (string, error) {
		code, body, err := getPublic(ctx, nf.StackAURL+"/readyz")
		if err != nil {
			return "", err
		}
		checks, _ := body["checks"].(map[string]any)
		if code != http.StatusOK || checks["stack_b"] != "ok" {
			return "", fmt.Errorf("stack-a readyz: HTTP %d, stack_b %v", code, checks["stack_b"])
		}
		target := "in-process"
		if cfg.StackBURL != "" {
			target = cfg.StackBURL
		}
		return "stack_b ok (" + target + ")", nil
	}); err != nil {
		errs = append(errs, err)
	} else {
		up++
	}
	if key := firstNonEmpty(t.Creds.TenantAdmin.APIKey, t.AdminKey); key != "" {
		links++
		if err := ph.check("Stack B models", func() (string, error) {
			var out struct {
				Models []struct {
					ModelID  string `json:"model_id"`
					Provider string `json:"provider"`
				} `json:"models"`
			}
			cl := newAPIClient(key)
			if t.Creds.TenantAdmin.APIKey == "" {
				// prod: no seeded tenant; list for validate's fixture tenant.
				if _, err := ensureSmokeFixture(ctx, nf, newAPIClient(key)); err != nil {
					return "", err
				}
				cl.tenant = SmokeTenantID
			}
			if err := cl.do(ctx, http.MethodGet, nf.StackBURL+"/v1/models", nil, &out); err != nil {
				return "", err
			}
			if len(out.Models) == 0 {
				return "", errors.New("no models listed for the tenant")
			}
			return fmt.Sprintf("%d model(s) listed", len(out.Models)), nil
		}); err != nil {
			errs = append(errs, err)
		} else {
			up++
		}
	}
	peers, perr := readPeers(cfg.PeersFile)
	switch {
	case cfg.PeersFile == "":
		ph.skip("peers reachable", "no peers configured (profile "+cfg.Profile+")")
	case perr != nil:
		errs = append(errs, ph.check("peers reachable", func() (string, error) { return "", perr }))
	default:
		reach := 0
		for _, p := range peers {
			links++
			if err := ph.check("peer "+p.StackID, func() (string, error) {
				code, _, err := getPublic(ctx, strings.TrimRight(p.FederationURL, "/")+"/v1/federation/health")
				if err != nil {
					return "", err
				}
				if code != http.StatusOK {
					return "", fmt.Errorf("HTTP %d", code)
				}
				return p.FederationURL, nil
			}); err != nil {
				errs = append(errs, err)
			} else {
				reach++
				up++
			}
		}
		ph.note("peers reachable %d/%d", reach, len(peers))
	}
	ph.summarize("links up %d/%d", up, links)
	return errors.Join(errs...)
}

type peerEntry struct {
	StackID       string `json:"stack_id"`
	FederationURL string `json:"federation_url"`
}

func readPeers(path string) ([]peerEntry, error) {
	if path == "" {
		return nil, nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var pf struct {
		Peers []peerEntry `json:"peers"`
	}
	if err := json.Unmarshal(raw, &pf); err != nil {
		return nil, fmt.Errorf("peers file %s: %w", path, err)
	}
	return pf.Peers, nil
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
