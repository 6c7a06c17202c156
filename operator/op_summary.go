package operator

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/agentos/agentos/app"
	"github.com/agentos/agentos/core"
)

// summary prints what an operator needs after a successful up or
// redeploy: where everything is and the next commands.
func (o *operator) summary(ctx context.Context, rep *Report, cfg app.Config, nf app.NodeFile, took time.Duration, md, js string) {
	w := o.out
	fmt.Fprintf(w, "\nAgentOS is up — validated in %s\n", fmtDur(took))
	row := func(k, v string) { fmt.Fprintf(w, "  %-12s %s\n", k, v) }
	more := func(v string) { fmt.Fprintf(w, "  %-12s %s\n", "", v) }
	row("Stack A", nf.StackAURL)
	row("Stack B", nf.StackBURL)
	row("Federation", nf.FedURL)
	row("Console", nf.StackAURL+"/console")
	row("Node", fmt.Sprintf("pid %d, stack %s, mode %s", nf.PID, nf.StackID, cfg.Mode))
	if cfg.Mode == app.ModeProd {
		row("Credentials", "none on disk in prod: keys come from `agentos bootstrap` / `agentos token issue`")
	} else {
		row("Credentials", absPath(cfg.Path(app.CredentialsFileName))+" (0600: platform_admin and tenant_admin keys)")
	}
	more("rotate: agentos token list " + app.DemoTenantID + "; agentos token rotate " + app.DemoTenantID + " <token_id>")
	tenantID := app.DemoTenantID
	if rep.Seeded != nil && rep.Seeded.DefaultTenantID != "" {
		tenantID = rep.Seeded.DefaultTenantID
	}
	if cfg.Mode == app.ModeProd && (rep.Seeded == nil || rep.Seeded.DefaultTenantID == "") {
		row("Tenant", "none seeded in prod")
	} else {
		row("Tenant", tenantID)
	}
	more(`create another: agentos tenant create --id tnt_acme --name "Acme"`)
	row("Quotas", o.quotaLine(ctx, cfg, nf, tenantID))
	more(`change: agentos tenant update ` + tenantID + ` --quotas '{"runs":{"max_concurrent_runs":20}}'`)
	row("Health", fmt.Sprintf("services healthy %d/%d (%s)", countOK(rep.Health), len(rep.Health), checksTime(rep.Health)))
	row("Smoke", fmt.Sprintf("smoke %d/%d (%s)", countOK(rep.Smoke), len(rep.Smoke), checksTime(rep.Smoke)))
	for _, c := range rep.Smoke {
		more(fmt.Sprintf("%-4s %s (%d ms)", map[bool]string{true: "ok", false: c.Status}[c.Status == "ok"], c.Name, c.DurationMS))
	}
	if rep.Alerts.Configured {
		row("Alerts", fmt.Sprintf("email via %s to %s (STARTTLS %s)", rep.Alerts.SMTPServer, strings.Join(rep.Alerts.To, ", "), rep.Alerts.StartTLS))
	} else {
		row("Alerts", "off: set AGENTOS_SMTP_HOST and AGENTOS_SMTP_TO (or --smtp-host/--smtp-to)")
	}
	more("test: agentos test-alert")
	row("Logs", "agentos logs all -f   ("+absPath(LogPath(cfg))+")")
	row("Stop", "agentos nuke --yes-really (keeps data; --hard removes it); restart: agentos redeploy")
	row("Reports", md)
	more(js)
}

func checksTime(cs []Check) string {
	var t int64
	for _, c := range cs {
		t += c.DurationMS
	}
	return fmt.Sprintf("%d ms", t)
}

// quotaLine reads the tenant's effective quotas for the summary.
func (o *operator) quotaLine(ctx context.Context, cfg app.Config, nf app.NodeFile, tenantID string) string {
	t, _ := resolveTarget(cfg, nf.StackAURL, "")
	if t.AdminKey == "" {
		return "plan-tier defaults (no admin key to read them)"
	}
	var out struct {
		Tenant core.Tenant `json:"tenant"`
	}
	if err := newAPIClient(t.AdminKey).do(ctx, http.MethodGet, nf.StackAURL+"/v1/admin/tenants/"+tenantID, nil, &out); err != nil {
		return "unavailable: " + err.Error()
	}
	return describeQuotas(out.Tenant.Quotas)
}

func describeQuotas(q core.Quotas) string {
	var parts []string
	if r := q.Runs; r != nil {
		if r.MaxConcurrentRuns != nil {
			parts = append(parts, fmt.Sprintf("%d concurrent runs", *r.MaxConcurrentRuns))
		}
		if r.RunCreateQPS != nil {
			s := fmt.Sprintf("%g runs/s", *r.RunCreateQPS)
			if r.RunCreateBurst != nil {
				s += fmt.Sprintf(" (burst %d)", *r.RunCreateBurst)
			}
			parts = append(parts, s)
		}
	}
	if q.Tools != nil && q.Tools.ToolCallsPerMinute != nil {
		parts = append(parts, fmt.Sprintf("%d tool calls/min", *q.Tools.ToolCallsPerMinute))
	}
	if m := q.Models; m != nil {
		if b := m.TokenBudget; b != nil && b.MaxTokens != nil {
			parts = append(parts, fmt.Sprintf("%d tokens/%s", *b.MaxTokens, b.Window))
		}
		if m.MaxTokensPerRequest != nil {
			parts = append(parts, fmt.Sprintf("%d tokens/request", *m.MaxTokensPerRequest))
		}
	}
	if len(parts) == 0 {
		return "plan-tier defaults"
	}
	return strings.Join(parts, ", ")
}
