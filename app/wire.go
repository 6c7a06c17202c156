package app

import (
	"context"
	"errors"

	"github.com/agentos/agentos/stacka/admin"
)

// BuiltinToolIDs are the tools every node hosts.
var BuiltinToolIDs = []string{"tool.echo", "tool.kv.put", "tool.kv.get", "tool.kv.search", "tool.http.fetch"}

// stacks holds the wired services of a node.
type stacks struct {
	admin   *admin.AdminAPI
	closers []func(context.Context) error
	starts  []func(context.Context) error

	listBackends  func() []string
	ensureSamples func(ctx context.Context, tenantID string) ([]string, error)
}

// wireStacks builds Stack A, Stack B and federation on the node's store
// and mounts them on their routers.
func wireStacks(ctx context.Context, n *Node) (*stacks, error) {
	s := &stacks{}
	s.admin = &admin.AdminAPI{Tenants: n.store, Tokens: n.store, Audit: n.store, DefaultToolIDs: []string{"tool.echo", "tool.kv.put", "tool.kv.get", "tool.kv.search"}}
	s.admin.Register(n.routers[StackA].echo)
	return s, nil
}

func (s *stacks) start(ctx context.Context) error {
	for _, f := range s.starts {
		if err := f(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (s *stacks) close(ctx context.Context) error {
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		if err := s.closers[i](ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// backends lists the configured model backends (the demo tenant is
// entitled to all of them).
func (s *stacks) backends() []string {
	if s.listBackends != nil {
		return s.listBackends()
	}
	return []string{"builtin"}
}

// seedSamples creates the sample agent and tool through Stack A.
func (s *stacks) seedSamples(ctx context.Context, tenantID string) ([]string, error) {
	if s.ensureSamples == nil {
		return nil, nil
	}
	return s.ensureSamples(ctx, tenantID)
}
