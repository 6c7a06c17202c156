package bench

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// Plan is one `agentos bench` invocation.
type Plan struct {
	// Kind is "runs" (Stack A: create runs, follow each to its end) or
	// "gateway" (Stack B: chat completions).
	Kind string
	Options
	// StackA and StackB are the node's base URLs; they and Direct are the
	// only addresses a bench sends to.
	StackA, StackB string
	// ClusterA, for runs, lists further Stack A URLs of the same
	// installation (the other nodes of a cluster): runs are created round
	// robin over StackA and these, each followed from the next node.
	ClusterA []string
	// Direct, for gateway, is an OpenAI-compatible API root to call instead
	// of Stack B (the baseline of a proxied measurement: the same upstream
	// without the node). No key, no fixture, no node figures unless PID.
	Direct string
	// Model is the gateway's model ("tier:fast", "builtin/echo-1",
	// "<backend>/<model>").
	Model string
	// APIKey, when set, is used as is (its tenant's quotas apply); else
	// AdminKey (a platform admin key) sets up the bench tenant.
	APIKey, AdminKey string
	// PID is the node's process id when it runs on this machine: its CPU
	// and RSS come from /proc. Otherwise they come from /metrics.
	PID int
	// MaxConns caps the client's connection pool (default 4096).
	MaxConns int
}

// Execute sets up, runs and summarizes a plan.
func Execute(ctx context.Context, p Plan) (Report, error) {
	if err := p.Options.Validate(); err != nil {
		return Report{}, err
	}
	if p.MaxConns <= 0 {
		p.MaxConns = 4096
	}
	hc := NewClient(p.MaxConns)
	defer hc.CloseIdleConnections()
	var do Request
	var target, metrics string
	var fixture *Fixture
	setup := func(backend string) error {
		if p.APIKey != "" {
			return nil
		}
		if p.AdminKey == "" {
			return errors.New("no key: pass --api-key, or an admin key (--admin-key, $AGENTOS_API_KEY, credentials.json) to set up the bench tenant")
		}
		a, err := BaseURL(p.StackA)
		if err != nil {
			return fmt.Errorf("stack a %w", err)
		}
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		f, err := Setup(sctx, hc, a, p.AdminKey, p.Rate, backend)
		if err != nil {
			return err
		}
		fixture = &f
		p.APIKey = f.APIKey
		return nil
	}
	switch p.Kind {
	case "gateway":
		if p.Model == "" {
			p.Model = "tier:fast"
		}
		g := &Gateway{Client: hc, Model: p.Model, MaxTokens: 64}
		if p.Direct != "" {
			u, err := BaseURL(p.Direct)
			if err != nil {
				return Report{}, fmt.Errorf("direct %w", err)
			}
			g.Base, g.APIKey = u, p.APIKey
			target = "direct " + u.String() + "/chat/completions model " + p.Model
			do = g.Do
			break
		}
		b, err := BaseURL(p.StackB)
		if err != nil {
			return Report{}, fmt.Errorf("stack b %w", err)
		}
		if err := setup(backendOf(p.Model)); err != nil {
			return Report{}, err
		}
		g.Base = b.JoinPath("v1")
		g.APIKey = p.APIKey
		target = "stack b " + b.String() + "/v1/chat/completions model " + p.Model
		metrics = b.String() + "/metrics"
		do = g.Do
	case "runs":
		a, err := BaseURL(p.StackA)
		if err != nil {
			return Report{}, fmt.Errorf("stack a %w", err)
		}
		agent := AgentID
		if err := setup(""); err != nil {
			return Report{}, err
		}
		r := &Runs{Client: hc, Base: a, APIKey: p.APIKey, Agent: agent, Tag: strconv.FormatInt(time.Now().UnixNano(), 36)}
		target = "stack a " + a.String() + "/v1/agents/" + agent + "/runs (create, follow events to the end)"
		if len(p.ClusterA) > 0 {
			r.Nodes = []*url.URL{a}
			for _, raw := range p.ClusterA {
				u, err := BaseURL(raw)
				if err != nil {
					return Report{}, fmt.Errorf("stack a %w", err)
				}
				r.Nodes = append(r.Nodes, u)
			}
			target = fmt.Sprintf("stack a on %d nodes (%s first): runs created round robin, each followed from the next node", len(r.Nodes), a)
		}
		metrics = a.String() + "/metrics"
		do = r.Do
	default:
		return Report{}, fmt.Errorf("kind %q: want runs or gateway", p.Kind)
	}
	if fixture != nil {
		defer func() {
			rctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = fixture.Revoke(rctx)
		}()
	}
	w := newWatcher(nil, "")
	if p.PID > 0 {
		if pr, src, err := ProcProbe(p.PID); err == nil {
			w = newWatcher(pr, src)
		}
	}
	if w.probe == nil && metrics != "" {
		if pr, src, err := MetricsProbe(hc, metrics); err == nil {
			w = newWatcher(pr, src)
		}
	}
	res, err := Run(ctx, p.Options, do, w.start)
	node := w.finish()
	if err != nil {
		return Report{}, err
	}
	return Summarize(target, res, node), nil
}
