package operator

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/agentos/agentos/app"
	"github.com/urfave/cli/v2"
)

// Exit statuses of validate and conformance.
const (
	// ExitFailed: a gate or an operation that ran did not pass.
	ExitFailed = 1
	// ExitUsage: the command line or its files are wrong.
	ExitUsage = 2
	// ExitUnreachable: a target URL did not answer at all (connection,
	// DNS, TLS or timeout), so nothing was measured.
	ExitUnreachable = 3
)

// Environment variables of the remote-target flags.
const (
	TargetStackAEnv  = "AGENTOS_TARGET_STACK_A"
	TargetStackBEnv  = "AGENTOS_TARGET_STACK_B"
	TargetFedEnv     = "AGENTOS_TARGET_FED"
	TargetAPIKeyEnv  = "AGENTOS_TARGET_API_KEY"
	TargetAdminEnv   = "AGENTOS_TARGET_ADMIN_KEY"
	TargetCAFileEnv  = "AGENTOS_TARGET_CA_FILE"
	TargetTimeoutEnv = "AGENTOS_TARGET_TIMEOUT"
)

// remoteTarget is a node or cluster named by URL, with the credentials
// and transport settings to reach it.
type remoteTarget struct {
	StackA, StackB, Fed string
	// APIKey is a tenant key (tenant admin); AdminKey a platform admin key.
	APIKey, AdminKey string
	CAFile           string
	Timeout          time.Duration
}

// outputOptions are --format and --output.
type outputOptions struct {
	Format, Output string
}

// remoteFlags are the flags that name a target by URL. --api-key is
// declared by each command (its meaning without targets differs).
func remoteFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "target-stack-a", EnvVars: []string{TargetStackAEnv}, Usage: "Stack A base URL of a node or cluster to check by URL (no data dir needed)"},
		&cli.StringFlag{Name: "target-stack-b", EnvVars: []string{TargetStackBEnv}, Usage: "Stack B base URL of the target"},
		&cli.StringFlag{Name: "target-fed", EnvVars: []string{TargetFedEnv}, Usage: "federation base URL of the target"},
		&cli.StringFlag{Name: "admin-key", EnvVars: []string{TargetAdminEnv}, Usage: "platform admin key of the target (admin-only checks are skipped without it)"},
		&cli.StringFlag{Name: "ca-file", EnvVars: []string{TargetCAFileEnv}, Usage: "PEM CA bundle trusted for https targets besides the system roots"},
		&cli.DurationFlag{Name: "timeout", EnvVars: []string{TargetTimeoutEnv}, Value: 15 * time.Second, Usage: "bound of each request to the target"},
	}
}

// outputFlags are --format and --output.
func outputFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "format", Value: "text", Usage: "text|json|junit"},
		&cli.StringFlag{Name: "output", Usage: "write the json or junit report to FILE (default: stdout; progress then goes to stdout)"},
	}
}

// readRemote reads the remote-target flags; ok is false when no target
// URL was given.
func readRemote(c *cli.Context) (remoteTarget, bool, error) {
	r := remoteTarget{StackA: c.String("target-stack-a"), StackB: c.String("target-stack-b"), Fed: c.String("target-fed"),
		APIKey: c.String("api-key"), AdminKey: c.String("admin-key"), CAFile: c.String("ca-file"), Timeout: c.Duration("timeout")}
	if r.StackA == "" && r.StackB == "" && r.Fed == "" {
		return r, false, nil
	}
	if r.APIKey == "" {
		r.APIKey = os.Getenv(TargetAPIKeyEnv)
	}
	if r.Timeout <= 0 || r.Timeout > 10*time.Minute {
		return r, true, fmt.Errorf("--timeout %v: want more than 0 and at most 10m", r.Timeout)
	}
	for name, u := range map[string]string{"target-stack-a": r.StackA, "target-stack-b": r.StackB, "target-fed": r.Fed} {
		if u != "" && !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			return r, true, fmt.Errorf("--%s %q: want an http:// or https:// URL", name, u)
		}
	}
	r.StackA, r.StackB, r.Fed = strings.TrimRight(r.StackA, "/"), strings.TrimRight(r.StackB, "/"), strings.TrimRight(r.Fed, "/")
	return r, true, nil
}

func readOutput(c *cli.Context) (outputOptions, error) {
	o := outputOptions{Format: c.String("format"), Output: c.String("output")}
	switch o.Format {
	case "text", "json", "junit":
	default:
		return o, fmt.Errorf("--format %q: want text, json or junit", o.Format)
	}
	if o.Format == "text" && o.Output != "" {
		return o, errors.New("--output needs --format json or junit")
	}
	return o, nil
}

// httpClient builds the client of the target: system roots plus the CA
// file, and the timeout on every request.
func (r remoteTarget) httpClient() (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if r.CAFile != "" {
		pem, err := os.ReadFile(r.CAFile)
		if err != nil {
			return nil, fmt.Errorf("--ca-file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca-file %s: no PEM certificate in it", r.CAFile)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	tr.ResponseHeaderTimeout = r.Timeout
	tr.TLSHandshakeTimeout = min(r.Timeout, 10*time.Second)
	return &http.Client{Transport: tr, Timeout: r.Timeout}, nil
}

// unreachable probes each URL's /healthz and names those that do not
// answer at all (any HTTP answer counts as reachable).
func unreachable(ctx context.Context, hc *http.Client, urls map[string]string) []string {
	var out []string
	for _, name := range []string{app.StackA, app.StackB, app.StackFed} {
		u := urls[name]
		if u == "" {
			continue
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u+"/healthz", nil)
		if err != nil {
			out = append(out, fmt.Sprintf("%s %s: %v", name, u, err))
			continue
		}
		resp, err := hc.Do(req)
		if err != nil {
			hint := ""
			var ua x509.UnknownAuthorityError
			if errors.As(err, &ua) {
				hint = " (a private CA? pass --ca-file)"
			}
			out = append(out, fmt.Sprintf("%s %s: %v%s", name, u, err, hint))
			continue
		}
		resp.Body.Close()
	}
	return out
}

// validateRemote runs the gates against a target named by URL: nothing is
// read from a data dir and no report directory is written.
func (o *operator) validateRemote(ctx context.Context, r remoteTarget, out outputOptions) error {
	if r.StackA == "" || r.StackB == "" || r.Fed == "" {
		return &exitError{ExitUsage, "validate by URL needs all of --target-stack-a, --target-stack-b and --target-fed"}
	}
	hc, err := r.httpClient()
	if err != nil {
		return &exitError{ExitUsage, err.Error()}
	}
	nf := app.NodeFile{StackAURL: r.StackA, StackBURL: r.StackB, FedURL: r.Fed}
	t := nodeTarget{Node: nf, AdminKey: r.AdminKey, HTTP: hc, Remote: true}
	t.Creds.TenantAdmin.APIKey = r.APIKey
	rep := newGateReport("validate", o.build, nodeURLs(nf))
	progressOut := o.out
	if out.Format != "text" && out.Output == "" {
		progressOut = o.errw
	}
	fmt.Fprintf(progressOut, "agentos validate — target %s, %s, %s\n", r.StackA, r.StackB, r.Fed)
	if down := unreachable(ctx, hc, nodeURLs(nf)); len(down) > 0 {
		ph := PhaseResult{Name: "reach", Status: "failed", Summary: "could not reach the target"}
		for _, d := range down {
			ph.Checks = append(ph.Checks, Check{Name: "reachable", Status: "failed", Detail: d})
			fmt.Fprintf(progressOut, "      could not reach %s\n", d)
		}
		rep.Phases = append(rep.Phases, ph)
		rep.Status = "unreachable"
		if err := o.emit(rep, out); err != nil {
			return err
		}
		return &exitError{ExitUnreachable, "could not reach the target: " + strings.Join(down, "; ")}
	}
	pr := &progress{out: progressOut, report: &Report{}, total: 2}
	herr := pr.run("health", func(ph *phase) error {
		_, err := healthGate(ctx, ph, nf, hc)
		return err
	})
	serr := pr.run("smoke", func(ph *phase) error {
		_, err := smokeGate(ctx, ph, nf, t)
		return err
	})
	rep.Phases = append(rep.Phases, pr.report.Phases...)
	gerr := errors.Join(herr, serr)
	if gerr != nil {
		rep.Status = "failed"
	}
	if err := o.emit(rep, out); err != nil {
		return err
	}
	if gerr != nil {
		return &exitError{ExitFailed, "validation failed: " + strings.Join(rep.failedNames(), ", ")}
	}
	fmt.Fprintf(progressOut, "validated %s in %s: %d passed, %d skipped\n", r.StackA, fmtDur(time.Since(rep.StartedAt)), rep.count("ok"), rep.count("skipped"))
	return nil
}

// gateReport is the machine-readable outcome of validate or conformance
// (--format json; --format junit renders the same data).
type gateReport struct {
	Tool       string            `json:"tool"`
	Version    string            `json:"version"`
	Status     string            `json:"status"` // ok | failed | unreachable
	Target     map[string]string `json:"target"`
	StartedAt  time.Time         `json:"started_at"`
	DurationMS int64             `json:"duration_ms"`
	Phases     []PhaseResult     `json:"phases"`
}

func newGateReport(tool string, build app.BuildInfo, target map[string]string) *gateReport {
	return &gateReport{Tool: "agentos " + tool, Version: build.Version, Status: "ok", Target: target, StartedAt: time.Now().UTC(), Phases: []PhaseResult{}}
}

// count counts the checks with status.
func (g *gateReport) count(status string) int {
	n := 0
	for _, p := range g.Phases {
		for _, c := range p.Checks {
			if c.Status == status {
				n++
			}
		}
	}
	return n
}

// failedNames names the failed checks as "phase/check".
func (g *gateReport) failedNames() []string {
	var out []string
	for _, p := range g.Phases {
		for _, c := range p.Checks {
			if c.Status == "failed" {
				out = append(out, p.Name+"/"+c.Name)
			}
		}
	}
	return out
}

// emit writes the json or junit form of rep to --output or stdout; text
// has already been printed as progress.
func (o *operator) emit(rep *gateReport, out outputOptions) error {
	rep.DurationMS = time.Since(rep.StartedAt).Milliseconds()
	if out.Format == "text" {
		return nil
	}
	var raw []byte
	var err error
	if out.Format == "json" {
		raw, err = json.MarshalIndent(rep, "", "  ")
	} else {
		raw, err = junitXML(rep)
	}
	if err != nil {
		return &exitError{ExitFailed, err.Error()}
	}
	raw = append(raw, '\n')
	if out.Output == "" {
		_, err = o.out.Write(raw)
		return err
	}
	if err := os.WriteFile(out.Output, raw, 0o644); err != nil {
		return &exitError{ExitUsage, fmt.Sprintf("--output: %v", err)}
	}
	fmt.Fprintf(o.out, "report: %s (%s)\n", out.Output, out.Format)
	return nil
}

// JUnit XML as CI systems read it: one testsuite per phase, one testcase
// per check; a failed check carries the answer that failed.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Time     string      `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Body    string `xml:",chardata"`
}

func secs(ms int64) string { return fmt.Sprintf("%.3f", float64(ms)/1000) }

func junitXML(rep *gateReport) ([]byte, error) {
	all := junitSuites{Name: rep.Tool, Time: secs(rep.DurationMS)}
	for _, p := range rep.Phases {
		s := junitSuite{Name: p.Name, Time: secs(p.DurationMS)}
		for _, c := range p.Checks {
			tc := junitCase{Name: c.Name, Classname: strings.ReplaceAll(rep.Tool, " ", ".") + "." + p.Name, Time: secs(c.DurationMS)}
			switch c.Status {
			case "failed":
				tc.Failure = &junitMessage{Message: firstLine(c.Detail), Body: c.Detail}
				s.Failures++
			case "skipped":
				tc.Skipped = &junitMessage{Message: c.Detail}
				s.Skipped++
			default:
				tc.SystemOut = c.Detail
			}
			s.Tests++
			s.Cases = append(s.Cases, tc)
		}
		all.Tests += s.Tests
		all.Failures += s.Failures
		all.Skipped += s.Skipped
		all.Suites = append(all.Suites, s)
	}
	raw, err := xml.MarshalIndent(all, "", "  ")
	if err != nil {
		return nil, err
	}
	return append([]byte(xml.Header), raw...), nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
