package operator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/agentos/agentos/app"
	"github.com/agentos/agentos/bench"
	"github.com/urfave/cli/v2"
)

// dropUnsolicited keeps net/http's "Unsolicited response received on idle
// HTTP channel" lines out of a bench report: a node at its connection cap
// answers a new connection 429 before a request is sent on it, the client's
// Transport logs that once per connection (thousands at an overload), and
// the request sent next on it is counted with its own outcome anyway.
type dropUnsolicited struct{ w io.Writer }

func (d dropUnsolicited) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("Unsolicited response received on idle HTTP channel")) {
		return len(p), nil
	}
	return d.w.Write(p)
}

// benchCommand is `agentos bench`: the open-loop load generator of package
// bench against a running node (docs/benchmarks.md).
func benchCommand(stdout io.Writer) *cli.Command {
	common := []cli.Flag{
		&cli.Float64Flag{Name: "rate", Value: 100, Usage: "requests per second, sent on a fixed schedule"},
		&cli.DurationFlag{Name: "duration", Value: 10 * time.Second, Usage: "how long to send (the run stops by itself after it and the drain timeout)"},
		&cli.DurationFlag{Name: "warmup", Value: 2 * time.Second, Usage: "sent first at the same rate and left out of every figure"},
		&cli.DurationFlag{Name: "timeout", Value: 10 * time.Second, Usage: "per request (for runs: create to terminal event)"},
		&cli.StringFlag{Name: "url-a", Usage: "Stack A base URL (default: from <data-dir>/node.json); for runs, several comma-separated URLs of one cluster spread the runs over its nodes"},
		&cli.StringFlag{Name: "url-b", Usage: "Stack B base URL (default: from <data-dir>/node.json)"},
		&cli.IntFlag{Name: "pid", Usage: "the node's pid, for CPU and RSS from /proc (default: node.json's, when that node runs here; else /metrics)"},
		&cli.StringFlag{Name: "api-key", Usage: "use this tenant key as is (its quotas apply) instead of setting up tnt_bench"},
		&cli.StringFlag{Name: "admin-key", Usage: "platform admin key that sets up tnt_bench (default: $AGENTOS_API_KEY, then credentials.json)"},
		&cli.BoolFlag{Name: "json", Usage: "print the report as JSON"},
	}
	run := func(kind string) cli.ActionFunc {
		return func(c *cli.Context) error {
			cfg, _, err := loadConfig(c)
			if err != nil {
				return &exitError{2, err.Error()}
			}
			p := bench.Plan{Kind: kind, Options: bench.Options{Rate: c.Float64("rate"), Duration: c.Duration("duration"),
				Warmup: c.Duration("warmup"), Timeout: c.Duration("timeout")},
				StackB: c.String("url-b"), APIKey: c.String("api-key"), AdminKey: c.String("admin-key"),
				PID: c.Int("pid")}
			if urls := strings.Split(c.String("url-a"), ","); len(urls) > 1 && kind == "runs" {
				p.StackA, p.ClusterA = urls[0], urls[1:]
			} else {
				p.StackA = c.String("url-a")
			}
			if kind == "gateway" {
				p.Model, p.Direct = c.String("model"), c.String("direct")
			}
			if err := p.Options.Validate(); err != nil {
				return &exitError{2, err.Error()}
			}
			log.SetOutput(dropUnsolicited{os.Stderr})
			nf, nfErr := app.ReadNodeFile(cfg.DataDir)
			if p.StackA == "" {
				p.StackA = nf.StackAURL
			}
			if p.StackB == "" {
				p.StackB = nf.StackBURL
			}
			// node.json's pid only when it names the node we target.
			if p.PID == 0 && nfErr == nil && nf.PID > 0 && p.StackA == nf.StackAURL && p.StackB == nf.StackBURL {
				p.PID = nf.PID
			}
			if p.Direct == "" && (kind == "runs" && p.StackA == "" || kind == "gateway" && p.StackB == "") {
				return &exitError{2, fmt.Sprintf("no node to target: start one with `agentos up`, or pass --url-a/--url-b (%s: %v)", cfg.Path("node.json"), nfErr)}
			}
			if p.APIKey == "" && p.Direct == "" {
				p.AdminKey = firstNonEmpty(p.AdminKey, os.Getenv("AGENTOS_API_KEY"))
				if p.AdminKey == "" {
					creds, _ := app.ReadCredentials(cfg.DataDir)
					p.AdminKey = creds.PlatformAdmin.APIKey
				}
				if p.AdminKey != "" && p.StackA == "" {
					return &exitError{2, "setting up tnt_bench needs Stack A: pass --url-a"}
				}
			}
			ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
			defer stop()
			rep, err := bench.Execute(ctx, p)
			if err != nil {
				return &exitError{1, "bench: " + err.Error()}
			}
			if c.Bool("json") {
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			rep.Print(stdout)
			return nil
		}
	}
	withConfig := func(fs ...cli.Flag) []cli.Flag {
		out := append(append([]cli.Flag{}, common...), fs...)
		return append(out, configFlags()...)
	}
	return &cli.Command{
		Name:  "bench",
		Usage: "open-loop load against a running node: throughput, latency percentiles, errors, node CPU and RSS",
		Subcommands: []*cli.Command{
			{
				Name:   "runs",
				Usage:  "create runs of the bench echo agent on Stack A and follow each to its terminal event",
				Flags:  withConfig(),
				Action: run("runs"),
			},
			{
				Name:  "gateway",
				Usage: "chat completions on Stack B (the builtin model, or --model <backend>/<model>)",
				Flags: withConfig(
					&cli.StringFlag{Name: "model", Value: "builtin/echo-1", Usage: "model: tier:<tier>, builtin/echo-1, or <backend>/<model> of the providers file"},
					&cli.StringFlag{Name: "direct", Usage: "call this OpenAI-compatible API root instead of Stack B (the baseline of a proxied run)"},
				),
				Action: run("gateway"),
			},
			{
				Name:  "upstream",
				Usage: "serve a minimal OpenAI-compatible upstream on loopback, to measure what the gateway adds",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "addr", Value: "127.0.0.1:9099", Usage: "loopback address to listen on"},
					&cli.DurationFlag{Name: "delay", Usage: "answer after this long (a slower model)"},
				},
				Action: func(c *cli.Context) error {
					u, err := bench.ListenUpstream(c.String("addr"))
					if err != nil {
						return &exitError{2, err.Error()}
					}
					u.Delay = c.Duration("delay")
					fmt.Fprintf(stdout, "upstream listening: base_url %s (model bench-1); stop with Ctrl-C\n", u.URL())
					ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
					defer stop()
					go func() { <-ctx.Done(); _ = u.Close() }()
					if err := u.Serve(); err != nil {
						return &exitError{1, err.Error()}
					}
					fmt.Fprintf(stdout, "upstream stopped after %d completions\n", u.Served())
					return nil
				},
			},
		},
	}
}
