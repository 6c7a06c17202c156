package stacka

import (
	"context"

	"github.com/agentos/agentos/core"
)

// PublicCardsSetting is the tenant metadata key that makes the A2A Agent
// Cards of a tenant's agents readable without a credential
// (metadata.a2a_public_cards: true). Absent or anything but true: cards
// need a credential of the tenant.
const PublicCardsSetting = "a2a_public_cards"

// AgentFor returns agent agentID of a's tenant to a credential that may
// read agents, create runs or read runs (what the interop surfaces need to
// describe or reach an agent): not_found outside the tenant, forbidden
// without any of those scopes.
func (s *Service) AgentFor(ctx context.Context, a core.Auth, agentID string) (core.Agent, error) {
	if err := a.RequireAny(core.ScopeRunsCreate, core.ScopeAgentsRead, core.ScopeRunsRead); err != nil {
		return core.Agent{}, err
	}
	return s.cachedAgent(ctx, a.TenantID, agentID)
}

// RunnableAgents lists the active agents of a's tenant the credential may
// run (scope runs:create; forbidden without it).
func (s *Service) RunnableAgents(ctx context.Context, a core.Auth) ([]core.Agent, error) {
	if err := a.Require(core.ScopeRunsCreate); err != nil {
		return nil, err
	}
	all, err := s.agents.ListAgents(ctx, a.TenantID)
	if err != nil {
		return nil, err
	}
	out := make([]core.Agent, 0, len(all))
	for _, ag := range all {
		if ag.Status != "disabled" {
			out = append(out, ag)
		}
	}
	return out, nil
}

// PublicAgent returns an agent whose card its tenant publishes
// (PublicCardsSetting), for a reader without a credential. A tenant that
// does not exist, is disabled or does not publish answers unauthorized (a
// credential is needed), so the answer says nothing about which tenants
// exist; a publishing tenant's unknown agent is not_found.
func (s *Service) PublicAgent(ctx context.Context, tenantID, agentID string) (core.Agent, error) {
	// Read past the cache: turning publication off must take effect at
	// once, not when a cached tenant expires.
	t, err := s.tenants.GetTenant(ctx, tenantID)
	if err != nil && !core.IsCode(err, core.CodeNotFound) {
		return core.Agent{}, err
	}
	if err != nil || t.Status == core.TenantDisabled || t.Metadata[PublicCardsSetting] != true {
		return core.Agent{}, core.Errorf(core.CodeUnauthorized, "a credential is required to read this agent card")
	}
	ag, err := s.cachedAgent(ctx, tenantID, agentID)
	if err != nil {
		return core.Agent{}, err
	}
	if ag.Status == "disabled" {
		return core.Agent{}, core.NotFound("agent", agentID)
	}
	return ag, nil
}
