package operator

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/agentos/agentos/app"
)

// ReportsDir is where up, redeploy, validate and nuke write their reports,
// relative to the working directory (CONTRACT §7).
const ReportsDir = "reports"

// Check is one timed check of a phase.
type Check struct {
	Name       string `json:"name"`
	Status     string `json:"status"` // ok | failed | skipped
	DurationMS int64  `json:"duration_ms"`
	Detail     string `json:"detail,omitempty"`
}

// PhaseResult is one phase of an operator action.
type PhaseResult struct {
	Name       string  `json:"name"`
	Status     string  `json:"status"`
	DurationMS int64   `json:"duration_ms"`
	Summary    string  `json:"summary,omitempty"`
	Checks     []Check `json:"checks"`
}

// ReportBinary identifies the binary that ran the action.
type ReportBinary struct {
	Path      string `json:"path"`
	Version   string `json:"version"`
	GitSHA    string `json:"git_sha"`
	BuildTime string `json:"build_time"`
	SHA256    string `json:"sha256"`
}

// ReportHost is the machine the action ran on.
type ReportHost struct {
	Hostname string `json:"hostname"`
	OS       string `json:"os"`
	Arch     string `json:"arch"`
	CPUs     int    `json:"cpus"`
}

// ReportNode is where the node listens.
type ReportNode struct {
	PID     int               `json:"pid"`
	StackID string            `json:"stack_id"`
	Addrs   map[string]string `json:"addrs"`
	URLs    map[string]string `json:"urls"`
	LogFile string            `json:"log_file"`
	PIDFile string            `json:"pid_file"`
	DataDir string            `json:"data_dir"`
	// Store names the storage (bbolt file or PostgreSQL URL without its
	// password).
	Store string `json:"store"`
}

// ReportCredentials says where keys are and how to rotate them.
type ReportCredentials struct {
	File         string `json:"file"`
	RotationHint string `json:"rotation_hint"`
}

// ReportAlerts is the alert configuration status.
type ReportAlerts struct {
	Configured bool     `json:"configured"`
	SMTPServer string   `json:"smtp_server,omitempty"`
	StartTLS   string   `json:"starttls,omitempty"`
	Auth       bool     `json:"auth"`
	To         []string `json:"to,omitempty"`
	Hint       string   `json:"hint"`
}

// Report is the JSON of reports/<action>-YYYYMMDD-HHMMSS.json; the
// Markdown twin renders the same data.
type Report struct {
	Action      string            `json:"action"`
	Status      string            `json:"status"` // ok | failed
	StartedAt   time.Time         `json:"started_at"`
	FinishedAt  time.Time         `json:"finished_at"`
	DurationMS  int64             `json:"duration_ms"`
	Mode        string            `json:"mode"`
	Profile     string            `json:"profile"`
	Host        ReportHost        `json:"host"`
	Binary      ReportBinary      `json:"binary"`
	Node        ReportNode        `json:"node"`
	Seeded      *app.Seeded       `json:"seeded"`
	Credentials ReportCredentials `json:"credentials"`
	Phases      []PhaseResult     `json:"phases"`
	Health      []Check           `json:"health"`
	Smoke       []Check           `json:"smoke"`
	Alerts      ReportAlerts      `json:"alerts"`
	Remediation []string          `json:"remediation"`
	Details     map[string]any    `json:"details,omitempty"`
}

// newReport fills the parts every report shares.
func newReport(action string, cfg app.Config, build app.BuildInfo) *Report {
	host, _ := os.Hostname()
	exe, _ := os.Executable()
	sum, err := BinarySHA256()
	if err != nil {
		sum = "unavailable: " + err.Error()
	}
	r := &Report{Action: action, Status: "ok", StartedAt: time.Now().UTC(), Mode: cfg.Mode, Profile: cfg.Profile,
		Host:   ReportHost{Hostname: host, OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU()},
		Binary: ReportBinary{Path: exe, Version: build.Version, GitSHA: build.GitSHA, BuildTime: build.BuildTime, SHA256: sum},
		Node: ReportNode{DataDir: absPath(cfg.DataDir), Store: app.DescribeStore(cfg), LogFile: absPath(LogPath(cfg)), PIDFile: absPath(cfg.Path(PIDFileName)),
			Addrs: map[string]string{app.StackA: cfg.StackAAddr, app.StackB: cfg.StackBAddr, app.StackFed: cfg.FedAddr}, URLs: map[string]string{}},
		Credentials: ReportCredentials{File: absPath(cfg.Path(app.CredentialsFileName)),
			RotationHint: "agentos token list tnt_demo, then agentos token rotate tnt_demo <token_id> (the new secret is printed once; update credentials.json or your clients)"},
		Alerts: alertStatus(cfg.SMTP), Phases: []PhaseResult{}, Health: []Check{}, Smoke: []Check{}, Remediation: []string{}}
	if cfg.Mode == app.ModeProd {
		r.Credentials.RotationHint = "agentos token rotate <tenant_id> <token_id> --api-key <platform admin key>; prod keeps no credentials file"
	}
	return r
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

func alertStatus(s app.SMTPConfig) ReportAlerts {
	if !s.Enabled() {
		return ReportAlerts{Hint: "alerts are off: set --smtp-host/--smtp-to (AGENTOS_SMTP_HOST, AGENTOS_SMTP_TO) and run `agentos test-alert`"}
	}
	return ReportAlerts{Configured: true, SMTPServer: fmt.Sprintf("%s:%d", s.Host, s.Port), StartTLS: s.StartTLS,
		Auth: s.User != "", To: s.To, Hint: "send a test alert with `agentos test-alert`"}
}

// setNode records the running node's pid and URLs.
func (r *Report) setNode(nf app.NodeFile) {
	r.Node.PID, r.Node.StackID = nf.PID, nf.StackID
	if nf.StackAURL != "" {
		r.Node.URLs = map[string]string{app.StackA: nf.StackAURL, app.StackB: nf.StackBURL, app.StackFed: nf.FedURL, "console": nf.StackAURL + "/console"}
	}
}

// fail marks the report failed with a remediation tip.
func (r *Report) fail(tip string) {
	r.Status = "failed"
	if tip != "" {
		r.Remediation = append(r.Remediation, tip)
	}
}

// write stores reports/<action>-YYYYMMDD-HHMMSS.{json,md} under dir and
// returns both paths.
func (r *Report) write(dir string) (string, string, error) {
	r.FinishedAt = time.Now().UTC()
	r.DurationMS = r.FinishedAt.Sub(r.StartedAt).Milliseconds()
	if !r.Alerts.Configured && r.Action != "nuke" {
		r.Remediation = append(r.Remediation, "alerts are off: "+strings.TrimPrefix(r.Alerts.Hint, "alerts are off: "))
	}
	if r.Mode != app.ModeProd && r.Action == "up" && r.Status == "ok" {
		r.Remediation = append(r.Remediation, "demo keys are in "+r.Credentials.File+": rotate them before sharing the node ("+r.Credentials.RotationHint+")")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", fmt.Errorf("create reports dir: %w", err)
	}
	base := filepath.Join(dir, fmt.Sprintf("%s-%s", r.Action, r.StartedAt.Format("20060102-150405")))
	for i := 2; ; i++ {
		if _, err := os.Stat(base + ".json"); os.IsNotExist(err) {
			break
		}
		base = filepath.Join(dir, fmt.Sprintf("%s-%s-%d", r.Action, r.StartedAt.Format("20060102-150405"), i))
	}
	raw, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", "", err
	}
	if err := os.WriteFile(base+".json", append(raw, '\n'), 0o644); err != nil {
		return "", "", fmt.Errorf("write report: %w", err)
	}
	if err := os.WriteFile(base+".md", []byte(r.markdown()), 0o644); err != nil {
		return "", "", fmt.Errorf("write report: %w", err)
	}
	return base + ".md", base + ".json", nil
}

func (r *Report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# agentos %s — %s\n\n", r.Action, strings.ToUpper(r.Status))
	fmt.Fprintf(&b, "- started: %s, took %d ms\n", r.StartedAt.Format(time.RFC3339), r.DurationMS)
	fmt.Fprintf(&b, "- host: %s (%s/%s, %d CPUs)\n", r.Host.Hostname, r.Host.OS, r.Host.Arch, r.Host.CPUs)
	fmt.Fprintf(&b, "- binary: %s, version %s (git %s, built %s)\n", r.Binary.Path, r.Binary.Version, r.Binary.GitSHA, r.Binary.BuildTime)
	fmt.Fprintf(&b, "- binary sha256: `%s`\n", r.Binary.SHA256)
	fmt.Fprintf(&b, "- mode: %s, profile: %s\n\n", r.Mode, r.Profile)

	b.WriteString("## Node\n\n| | |\n|---|---|\n")
	fmt.Fprintf(&b, "| pid | %d |\n| stack id | %s |\n", r.Node.PID, r.Node.StackID)
	for _, k := range []string{app.StackA, app.StackB, app.StackFed} {
		fmt.Fprintf(&b, "| %s | listen `%s`, URL %s |\n", k, r.Node.Addrs[k], orDash(r.Node.URLs[k]))
	}
	fmt.Fprintf(&b, "| console | %s |\n| store | `%s` |\n| data dir | `%s` |\n| log file | `%s` |\n| pid file | `%s` |\n\n",
		orDash(r.Node.URLs["console"]), r.Node.Store, r.Node.DataDir, r.Node.LogFile, r.Node.PIDFile)

	if r.Seeded != nil {
		b.WriteString("## Seeded\n\n")
		fmt.Fprintf(&b, "- default tenant: `%s`\n- platform admin principal: `%s`\n- tenant admin principal: `%s`\n",
			r.Seeded.DefaultTenantID, r.Seeded.PlatformAdminPrincipalID, r.Seeded.TenantAdminPrincipalID)
		fmt.Fprintf(&b, "- sample agents: `%s`\n- sample tools: `%s`\n\n", strings.Join(r.Seeded.SampleAgentIDs, "`, `"), strings.Join(r.Seeded.SampleToolIDs, "`, `"))
	}
	fmt.Fprintf(&b, "## Credentials\n\n- file: `%s`\n- rotation: %s\n\n", r.Credentials.File, r.Credentials.RotationHint)

	if len(r.Phases) > 0 {
		b.WriteString("## Phases\n\n| phase | status | ms | summary |\n|---|---|---|---|\n")
		for _, p := range r.Phases {
			fmt.Fprintf(&b, "| %s | %s | %d | %s |\n", p.Name, p.Status, p.DurationMS, mdCell(p.Summary))
		}
		b.WriteString("\n")
	}
	checks := func(title string, cs []Check) {
		if len(cs) == 0 {
			return
		}
		fmt.Fprintf(&b, "## %s\n\n| check | status | ms | detail |\n|---|---|---|---|\n", title)
		for _, c := range cs {
			fmt.Fprintf(&b, "| %s | %s | %d | %s |\n", mdCell(c.Name), c.Status, c.DurationMS, mdCell(c.Detail))
		}
		b.WriteString("\n")
	}
	checks("Health checks", r.Health)
	checks("Smoke tests", r.Smoke)
	for _, p := range r.Phases {
		if p.Name != "validate" {
			checks("Phase "+p.Name, p.Checks)
		}
	}

	b.WriteString("## Alerts\n\n")
	if r.Alerts.Configured {
		fmt.Fprintf(&b, "- SMTP %s, STARTTLS %s, auth %v, to %s\n", r.Alerts.SMTPServer, r.Alerts.StartTLS, r.Alerts.Auth, strings.Join(r.Alerts.To, ", "))
	} else {
		b.WriteString("- not configured\n")
	}
	fmt.Fprintf(&b, "- %s\n\n", r.Alerts.Hint)

	b.WriteString("## Remediation\n\n")
	if len(r.Remediation) == 0 {
		b.WriteString("- nothing to do\n")
	}
	for _, t := range r.Remediation {
		fmt.Fprintf(&b, "- %s\n", t)
	}
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func mdCell(s string) string {
	s = strings.ReplaceAll(s, "|", "\\|")
	return strings.ReplaceAll(s, "\n", " ")
}
