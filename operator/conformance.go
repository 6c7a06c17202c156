package operator

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/agentos/agentos/app"
	"github.com/agentos/agentos/conformance/suite"
	"github.com/agentos/agentos/openapi"
	"github.com/urfave/cli/v2"
)

// conformanceCommand is `agentos conformance`: every operation of the
// three embedded documents against a server named by URL.
func conformanceCommand(o *operator) *cli.Command {
	return &cli.Command{
		Name: "conformance",
		Usage: "drive every operation of the three embedded OpenAPI documents against a server by URL with the golden examples " +
			"and validate every answer (implemented, accepted, valid per operation); non-zero when one differs, 3 when unreachable",
		Flags: append(append(remoteFlags(),
			&cli.StringFlag{Name: "api-key", Usage: "tenant key (tenant admin) of the target [$" + TargetAPIKeyEnv + "]"}),
			outputFlags()...),
		Action: func(c *cli.Context) error {
			out, err := readOutput(c)
			if err != nil {
				return &exitError{ExitUsage, err.Error()}
			}
			r, ok, err := readRemote(c)
			if err != nil {
				return &exitError{ExitUsage, err.Error()}
			}
			if !ok {
				return &exitError{ExitUsage, "name the server: --target-stack-a, --target-stack-b and/or --target-fed (or " + TargetStackAEnv + "…)"}
			}
			return o.conformance(c.Context, r, out)
		},
	}
}

func (o *operator) conformance(ctx context.Context, r remoteTarget, out outputOptions) error {
	hc, err := r.httpClient()
	if err != nil {
		return &exitError{ExitUsage, err.Error()}
	}
	urls := map[string]string{openapi.StackA: r.StackA, openapi.StackB: r.StackB, openapi.Federation: r.Fed}
	progressOut := o.out
	if out.Format != "text" && out.Output == "" {
		progressOut = o.errw
	}
	rep := newGateReport("conformance", o.build, urls)
	fmt.Fprintf(progressOut, "agentos conformance — %s %s %s\n", orDash(r.StackA), orDash(r.StackB), orDash(r.Fed))
	reach := map[string]string{app.StackA: r.StackA, app.StackB: r.StackB, app.StackFed: r.Fed}
	if down := unreachable(ctx, hc, reach); len(down) > 0 {
		ph := PhaseResult{Name: "reach", Status: "failed", Summary: "could not reach the target"}
		for _, d := range down {
			ph.Checks = append(ph.Checks, Check{Name: "reachable", Status: "failed", Detail: d})
			fmt.Fprintf(progressOut, "      could not reach %s\n", d)
		}
		rep.Phases, rep.Status = append(rep.Phases, ph), "unreachable"
		if err := o.emit(rep, out); err != nil {
			return err
		}
		return &exitError{ExitUnreachable, "could not reach the target: " + strings.Join(down, "; ")}
	}
	res, err := suite.Run(ctx, suite.Target{URLs: urls, APIKey: r.APIKey, AdminKey: r.AdminKey, Client: hc, Timeout: r.Timeout})
	if err != nil {
		return &exitError{ExitFailed, err.Error()}
	}
	phases := map[string]*PhaseResult{}
	for _, s := range openapi.Stacks() {
		rep.Phases = append(rep.Phases, PhaseResult{Name: s, Status: "ok", Checks: []Check{}})
	}
	for i := range rep.Phases {
		phases[rep.Phases[i].Name] = &rep.Phases[i]
	}
	for _, op := range res.Results {
		ph := phases[op.Stack]
		c := Check{Name: op.OperationID, Status: "ok", DurationMS: op.DurationMS,
			Detail: fmt.Sprintf("%s %s → %d; implemented %s, accepted %s, valid %s", op.Method, op.Path, op.Status, yesNo(op.Implemented), yesNo(op.Accepted), yesNo(op.Valid))}
		mark := "ok  "
		switch {
		case op.Skipped != "":
			c.Status, c.Detail, mark = "skipped", op.Skipped, "skip"
		case !op.Passed():
			c.Status, mark = "failed", "FAIL"
			c.Detail += "\nfirst difference: " + op.Difference
			ph.Status = "failed"
		}
		if op.Example != "" && c.Status != "skipped" {
			c.Detail += "\nrequest: golden example " + op.Example
		}
		ph.DurationMS += op.DurationMS
		ph.Checks = append(ph.Checks, c)
		fmt.Fprintf(progressOut, "  %s %-10s %-26s %s\n", mark, op.Stack, op.OperationID, strings.ReplaceAll(c.Detail, "\n", "\n       "))
	}
	for i := range rep.Phases {
		p := &rep.Phases[i]
		p.Summary = fmt.Sprintf("%d operations: %d passed, %d failed, %d skipped", len(p.Checks), countStatus(p.Checks, "ok"), countStatus(p.Checks, "failed"), countStatus(p.Checks, "skipped"))
	}
	switch {
	case res.Unreachable:
		rep.Status = "unreachable"
	case !res.OK():
		rep.Status = "failed"
	}
	fmt.Fprintf(progressOut, "conformance: %d operations, %d passed, %d failed, %d skipped (%s)\n",
		len(res.Results), res.Passed, res.Failed, res.Skipped, fmtDur(time.Since(rep.StartedAt)))
	if err := o.emit(rep, out); err != nil {
		return err
	}
	switch rep.Status {
	case "unreachable":
		return &exitError{ExitUnreachable, "could not reach the target"}
	case "failed":
		return &exitError{ExitFailed, fmt.Sprintf("%d operation(s) differ from the documents: %s", res.Failed, strings.Join(rep.failedNames(), ", "))}
	}
	return nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func countStatus(cs []Check, status string) int {
	n := 0
	for _, c := range cs {
		if c.Status == status {
			n++
		}
	}
	return n
}
