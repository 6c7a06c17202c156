package stacka

import (
	"context"
	"slices"

	"github.com/agentos/agentos/core"
)

// validateAgent fills defaults and checks an agent of PUT /v1/agents/{id}.
func (s *Service) validateAgent(ag *core.Agent) error {
	if !validID(ag.AgentID) {
		return core.Invalid("agent.agent_id", "agent_id must be 1-128 letters, digits, '.', '_' or '-'")
	}
	if ag.Name == "" {
		ag.Name = ag.AgentID
	}
	if ag.ModelRef == "" {
		return core.Invalid("agent.model_ref", "model_ref is required (tier:<fast|balanced|premium>, backend/model or a model id)")
	}
	if ag.Status == "" {
		ag.Status = "active"
	}
	if ag.Status != "active" && ag.Status != "disabled" {
		return core.Invalid("agent.status", "status must be active or disabled")
	}
	if ag.ToolIDs == nil {
		ag.ToolIDs = []string{}
	}
	for i, id := range ag.ToolIDs {
		if !validID(id) {
			return core.Invalid("agent.tool_ids", "tool_ids[%d] is not a tool id", i)
		}
	}
	if o := ag.DefaultRunOptions; o != nil {
		if err := validateRunOptions(o, "agent.default_run_options"); err != nil {
			return err
		}
	}
	return nil
}

// PutAgent creates or replaces an agent of a's tenant (version bumps).
func (s *Service) PutAgent(ctx context.Context, a core.Auth, ag core.Agent) (core.Agent, error) {
	if err := a.Require(core.ScopeAgentsWrite); err != nil {
		return core.Agent{}, err
	}
	ag.TenantID = a.TenantID
	if err := s.validateAgent(&ag); err != nil {
		return core.Agent{}, err
	}
	defer s.cache.forget("a/" + ag.TenantID + "/" + ag.AgentID)
	return s.agents.PutAgent(ctx, ag)
}

// EnsureAgent stores ag unless the stored one already matches it (same
// model, instructions, tools and status); idempotent for the demo seed.
func (s *Service) EnsureAgent(ctx context.Context, ag core.Agent) error {
	if err := s.validateAgent(&ag); err != nil {
		return err
	}
	if prev, err := s.agents.GetAgent(ctx, ag.TenantID, ag.AgentID); err == nil {
		if prev.ModelRef == ag.ModelRef && prev.Instructions == ag.Instructions && prev.Status == ag.Status &&
			prev.Name == ag.Name && slices.Equal(prev.ToolIDs, ag.ToolIDs) {
			return nil
		}
	}
	_, err := s.agents.PutAgent(ctx, ag)
	s.cache.forget("a/" + ag.TenantID + "/" + ag.AgentID)
	return err
}
