package operator

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/agentos/agentos/app"
)

// validate runs the §7 gates against the running node and writes reports.
func (o *operator) validate(ctx context.Context, cfg app.Config, urlOverride, keyOverride string, out outputOptions) error {
	if out.Format != "text" && out.Output == "" {
		// stdout carries the json or junit document; progress goes to stderr.
		quiet := *o
		quiet.out = o.errw
		return quiet.validateLocal(ctx, cfg, urlOverride, keyOverride, out, o.out)
	}
	return o.validateLocal(ctx, cfg, urlOverride, keyOverride, out, o.out)
}

// validateLocal is validate of the node of the data dir; doc receives the
// json or junit document when one is asked for.
func (o *operator) validateLocal(ctx context.Context, cfg app.Config, urlOverride, keyOverride string, out outputOptions, doc io.Writer) error {
	rep := newReport("validate", cfg, o.build)
	defer func() {
		if out.Format == "text" {
			return
		}
		g := newGateReport("validate", o.build, rep.Node.URLs)
		g.StartedAt, g.Phases = rep.StartedAt, rep.Phases
		if rep.Status != "ok" {
			g.Status = "failed"
		}
		docOp := *o
		docOp.out = doc
		_ = docOp.emit(g, out)
	}()
	t, err := resolveTarget(cfg, urlOverride, keyOverride)
	if err != nil {
		return o.failAction(rep, cfg, err, "agentos up")
	}
	nf := t.Node
	if urlOverride != "" && nf.StackBURL == "" {
		return o.failAction(rep, cfg, errors.New("--url needs node.json for the Stack B and federation URLs"), "run validate on the node's host, from its working directory")
	}
	rep.setNode(nf)
	fmt.Fprintf(o.out, "agentos validate — node %s (pid %d)\n", nf.StackAURL, nf.PID)
	pr := &progress{out: o.out, report: rep, total: 2}
	begin := time.Now()
	herr := pr.run("health", func(ph *phase) error {
		ph.sink = &rep.Health
		_, err := healthGate(ctx, ph, nf, t.httpClient())
		return err
	})
	serr := pr.run("smoke", func(ph *phase) error {
		ph.sink = &rep.Smoke
		res, err := smokeGate(ctx, ph, nf, t)
		rep.Details = map[string]any{"validation_run_id": res.RunID}
		return err
	})
	if err := errors.Join(herr, serr); err != nil {
		tip := "agentos logs all; agentos status"
		if herr != nil {
			tip = "a service is not ready: agentos logs all, then `agentos redeploy`"
		}
		return o.failAction(rep, cfg, err, tip)
	}
	md, js, err := rep.write(o.reportsDir)
	if err != nil {
		return &exitError{1, err.Error()}
	}
	fmt.Fprintf(o.out, "validated in %s: services healthy %d/3, smoke %d/%d\nreports: %s, %s\n",
		fmtDur(time.Since(begin)), countOK(rep.Health), countOK(rep.Smoke), len(rep.Smoke), md, js)
	return nil
}

// redeploy stops the node gracefully and starts it again with the
// configuration `up` used; data stays. Without a running node it just
// starts one.
func (o *operator) redeploy(ctx context.Context, cfg app.Config, l launch) error {
	rep := newReport("redeploy", cfg, o.build)
	fmt.Fprintf(o.out, "agentos redeploy — data dir %s\n", cfg.DataDir)
	pr := &progress{out: o.out, report: rep, total: 6}
	begin := time.Now()
	if err := pr.run("stop", func(ph *phase) error {
		return ph.check("graceful stop", stopCheck(cfg, " (SIGTERM)"))
	}); err != nil {
		return o.failAction(rep, cfg, err, "agentos status; kill the pid shown, then `agentos redeploy`")
	}
	var nf app.NodeFile
	if err := pr.run("boot", func(ph *phase) error {
		var err error
		nf, _, err = o.boot(ctx, ph, cfg, upOptions{Launch: l})
		return err
	}); err != nil {
		return o.failAction(rep, cfg, err, "agentos logs all; then `agentos redeploy`")
	}
	rep.setNode(nf)
	pr.idx = 2
	pr.total = 6
	if err := o.afterBoot(ctx, pr, rep, cfg, nf); err != nil {
		return err
	}
	took := time.Since(begin)
	fmt.Fprintf(o.out, "[6/6] report\n")
	md, js, err := rep.write(o.reportsDir)
	if err != nil {
		return &exitError{1, err.Error()}
	}
	fmt.Fprintf(o.out, "      wrote %s, %s\n", md, js)
	o.summary(ctx, rep, cfg, nf, took, md, js)
	return nil
}

// nuke stops the node and removes runtime state; hard removes the data dir.
func (o *operator) nuke(cfg app.Config, yes, hard bool) error {
	if !yes {
		what := "stop the node and remove its runtime state (pid, node.json, logs) in " + cfg.DataDir
		if hard {
			what = "stop the node and DELETE the data dir " + cfg.DataDir + " (tenants, runs, keys)"
		}
		return &exitError{2, "refusing to " + what + " without --yes-really"}
	}
	rep := newReport("nuke", cfg, o.build)
	if nf, err := app.ReadNodeFile(cfg.DataDir); err == nil {
		rep.setNode(nf)
	}
	fmt.Fprintf(o.out, "agentos nuke%s — data dir %s\n", map[bool]string{true: " --hard"}[hard], cfg.DataDir)
	pr := &progress{out: o.out, report: rep, total: 2}
	if err := pr.run("stop", func(ph *phase) error {
		return ph.check("stop node", stopCheck(cfg, ""))
	}); err != nil {
		return o.failAction(rep, cfg, err, "kill the node's pid by hand, then `agentos nuke --yes-really` again")
	}
	if err := pr.run("remove", func(ph *phase) error {
		var errs []error
		for _, p := range []string{cfg.Path(PIDFileName), cfg.Path("node.json"), cfg.Path(launchFileName), cfg.Path(LogDirName)} {
			if err := ph.check("remove "+p, func() (string, error) {
				if _, err := os.Stat(p); os.IsNotExist(err) {
					return "absent", nil
				}
				return "removed", os.RemoveAll(p)
			}); err != nil {
				errs = append(errs, err)
			}
		}
		if hard {
			if err := ph.check("remove data dir "+cfg.DataDir, func() (string, error) {
				return "removed", os.RemoveAll(cfg.DataDir)
			}); err != nil {
				errs = append(errs, err)
			}
		} else {
			ph.note("data kept in %s (store, keys, credentials); `--hard` removes it", cfg.DataDir)
		}
		return errors.Join(errs...)
	}); err != nil {
		return o.failAction(rep, cfg, err, "remove the paths above by hand")
	}
	if hard {
		rep.Remediation = append(rep.Remediation, "data removed: `agentos up` starts from scratch (new keys)")
	} else {
		rep.Remediation = append(rep.Remediation, "data kept: `agentos up` starts the node again with the same tenants, runs and keys")
	}
	md, js, err := rep.write(o.reportsDir)
	if err != nil {
		return &exitError{1, err.Error()}
	}
	fmt.Fprintf(o.out, "reports: %s, %s\n", md, js)
	return nil
}

// status prints the process, ports, health and counts of tenants and runs.
func (o *operator) status(ctx context.Context, cfg app.Config, keyOverride string) error {
	w := o.out
	nf, ours := runningNode(cfg)
	if !ours {
		fmt.Fprintf(w, "process     not running (data dir %s)\n", cfg.DataDir)
		if nf.PID != 0 {
			fmt.Fprintf(w, "            stale runtime files for pid %d: `agentos nuke --yes-really` cleans them\n", nf.PID)
		}
		fmt.Fprintln(w, "next        agentos up")
		return &exitError{3, ""}
	}
	started := nf.StartedAt
	if ts, err := time.Parse(time.RFC3339, nf.StartedAt); err == nil {
		started += fmt.Sprintf(" (up %s)", time.Since(ts).Round(time.Second))
	}
	fmt.Fprintf(w, "process     running, pid %d, version %s, mode %s, started %s\n", nf.PID, nf.Version, nf.Mode, started)
	fmt.Fprintf(w, "stack id    %s\n", nf.StackID)
	fmt.Fprintf(w, "store       %s\n", app.DescribeStore(cfg))
	if nf.NodeID != "" {
		fmt.Fprintf(w, "node id     %s\n", nf.NodeID)
	}
	if nodes, shared, err := app.ClusterNodes(ctx, cfg); shared {
		if err != nil {
			fmt.Fprintf(w, "cluster     unavailable: %v\n", err)
		} else {
			fmt.Fprintf(w, "cluster     %d live node(s)\n", len(nodes))
			for _, n := range nodes {
				fmt.Fprintf(w, "  node      %s  %s  runs in flight %d, last seen %s ago\n", n.NodeID, n.StackAURL, n.RunsInFlight,
					time.Since(n.LastSeen).Round(time.Second))
			}
		}
	}
	healthy := 0
	for _, name := range []string{app.StackA, app.StackB, app.StackFed} {
		u := nodeURLs(nf)[name]
		code, body, err := getPublic(ctx, u+"/readyz")
		state := "ready"
		switch {
		case err != nil:
			state = "down: " + err.Error()
		case code != http.StatusOK:
			state = fmt.Sprintf("not ready (HTTP %d) %v", code, body["checks"])
		default:
			healthy++
		}
		fmt.Fprintf(w, "%-11s %s  %s\n", name, u, state)
	}
	fmt.Fprintf(w, "health      services healthy %d/3\n", healthy)
	t, _ := resolveTarget(cfg, "", keyOverride)
	if t.AdminKey == "" {
		fmt.Fprintln(w, "counts      unavailable: no platform admin key (--api-key or AGENTOS_API_KEY)")
	} else {
		tenants, runs, err := countTenantsRuns(ctx, nf.StackAURL, t.AdminKey)
		if err != nil {
			fmt.Fprintf(w, "counts      unavailable: %v\n", err)
		} else {
			fmt.Fprintf(w, "counts      tenants %d, runs %d\n", tenants, runs)
		}
	}
	fmt.Fprintf(w, "logs        %s\n", LogPath(cfg))
	if healthy != 3 {
		return &exitError{1, fmt.Sprintf("services healthy %d/3", healthy)}
	}
	return nil
}

// countTenantsRuns lists tenants, then pages through each one's runs
// acting as it (platform admin).
func countTenantsRuns(ctx context.Context, stackA, key string) (int, int, error) {
	adm := newAPIClient(key)
	var ts struct {
		Tenants []struct {
			TenantID string `json:"tenant_id"`
		} `json:"tenants"`
	}
	if err := adm.do(ctx, http.MethodGet, stackA+"/v1/admin/tenants", nil, &ts); err != nil {
		return 0, 0, err
	}
	runs := 0
	for _, t := range ts.Tenants {
		cl := newAPIClient(key)
		cl.tenant = t.TenantID
		cursor := ""
		for page := 0; page < 1000; page++ {
			var out struct {
				Runs       []json.RawMessage `json:"runs"`
				NextCursor *string           `json:"next_cursor"`
			}
			u := stackA + "/v1/runs?limit=100"
			if cursor != "" {
				u += "&cursor=" + cursor
			}
			if err := cl.do(ctx, http.MethodGet, u, nil, &out); err != nil {
				return len(ts.Tenants), runs, fmt.Errorf("runs of %s: %w", t.TenantID, err)
			}
			runs += len(out.Runs)
			if out.NextCursor == nil || *out.NextCursor == "" {
				break
			}
			cursor = *out.NextCursor
		}
	}
	return len(ts.Tenants), runs, nil
}

// logServices maps a `logs` argument to the component values of its lines
// (the edge logs "stack-a", the stacks themselves "stacka" and so on).
var logServices = map[string][]string{
	app.StackA:   {app.StackA, "stacka"},
	app.StackB:   {app.StackB, "stackb"},
	app.StackFed: {app.StackFed, "fed"},
}

// logComponents collects every "component" value of a JSON log line
// (zerolog may repeat the key when a derived logger adds it again).
func logComponents(line []byte) []string {
	dec := json.NewDecoder(bytes.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil
	}
	var out []string
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return out
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return out
		}
		if k == "component" {
			var s string
			if json.Unmarshal(v, &s) == nil {
				out = append(out, s)
			}
		}
	}
	return out
}

// logFilter reports whether a line belongs to service.
func logFilter(service string) (func([]byte) bool, error) {
	if service == "all" {
		return func([]byte) bool { return true }, nil
	}
	want, ok := logServices[service]
	if !ok {
		return nil, fmt.Errorf("unknown service %q: want stack-a, stack-b, federation or all", service)
	}
	return func(line []byte) bool {
		for _, c := range logComponents(line) {
			for _, w := range want {
				if c == w {
					return true
				}
			}
		}
		return false
	}, nil
}

// logs prints the node log lines of a service; follow keeps reading.
func (o *operator) logs(ctx context.Context, cfg app.Config, service string, lines int, follow bool) error {
	keep, err := logFilter(service)
	if err != nil {
		return &exitError{2, err.Error()}
	}
	path := LogPath(cfg)
	f, err := os.Open(path)
	if err != nil {
		return &exitError{1, fmt.Sprintf("no log file (%v): start the node with `agentos up`", err)}
	}
	defer f.Close()
	var matched []string
	rd := bufio.NewReaderSize(f, 64<<10)
	for {
		line, err := rd.ReadBytes('\n')
		if len(line) > 0 && line[len(line)-1] == '\n' {
			if keep(line) {
				matched = append(matched, string(bytes.TrimRight(line, "\n")))
				if lines > 0 && len(matched) > lines {
					matched = matched[1:]
				}
			}
		} else if len(line) > 0 {
			// A partial last line: read it again once complete.
			_, _ = f.Seek(-int64(len(line)), io.SeekCurrent)
			rd.Reset(f)
			break
		}
		if err != nil {
			break
		}
	}
	for _, l := range matched {
		fmt.Fprintln(o.out, l)
	}
	if !follow {
		return nil
	}
	var partial []byte
	for {
		line, err := rd.ReadBytes('\n')
		partial = append(partial, line...)
		if err == nil {
			if keep(partial) {
				fmt.Fprint(o.out, strings.TrimRight(string(partial), "\n")+"\n")
			}
			partial = partial[:0]
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// testAlert sends a test email through the configured SMTP server.
func (o *operator) testAlert(ctx context.Context, cfg app.Config) error {
	s := cfg.SMTP
	if !s.Enabled() {
		return &exitError{2, "alert email not configured: set AGENTOS_SMTP_HOST and AGENTOS_SMTP_TO (or --smtp-host/--smtp-to), then run `agentos test-alert`"}
	}
	host, _ := os.Hostname()
	body := fmt.Sprintf("This is a test alert from AgentOS.\n\nhost: %s\nmode: %s\ndata dir: %s\ntime: %s\n\nIf you can read this, alert email works.\n",
		host, cfg.Mode, absPath(cfg.DataDir), time.Now().UTC().Format(time.RFC3339))
	if nf, ok := runningNode(cfg); ok {
		body += fmt.Sprintf("node: pid %d, stack %s, Stack A %s\n", nf.PID, nf.StackID, nf.StackAURL)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	start := time.Now()
	if err := app.SendMail(ctx, s, "[AgentOS] test alert from "+host, body); err != nil {
		fmt.Fprintf(o.out, "test alert NOT accepted: %v\n", err)
		return &exitError{1, ""}
	}
	fmt.Fprintf(o.out, "test alert accepted by %s:%d for %s (%s)\n", s.Host, s.Port, strings.Join(s.To, ", "), fmtDur(time.Since(start)))
	return nil
}
