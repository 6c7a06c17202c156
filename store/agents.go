package store

import (
	"context"

	"github.com/agentos/agentos/core"
	bolt "go.etcd.io/bbolt"
)

// Agents live at tenant/{t}/agents/{agent_id}; each put bumps the version.

var _ core.AgentPort = (*Store)(nil)

func agentKey(tenantID, agentID string) []byte { return TenantKey(tenantID, "agents", agentID) }

// PutAgent implements core.AgentPort (core.NextAgentVersion).
func (s *Store) PutAgent(ctx context.Context, ag core.Agent) (core.Agent, error) {
	var out core.Agent
	err := s.update(ctx, func(tx *bolt.Tx) error {
		var err error
		out, _, err = replaceJSON(Data(tx), agentKey(ag.TenantID, ag.AgentID), func(prev *core.Agent) core.Agent {
			return core.NextAgentVersion(prev, ag, core.Now())
		})
		return err
	})
	return out, err
}

// GetAgent implements core.AgentPort.
func (s *Store) GetAgent(ctx context.Context, tenantID, agentID string) (core.Agent, error) {
	return getOne[core.Agent](s, Data, agentKey(tenantID, agentID), "agent", agentID)
}

// ListAgents implements core.AgentPort.
func (s *Store) ListAgents(ctx context.Context, tenantID string) ([]core.Agent, error) {
	return listJSON[core.Agent](s, Data, TenantKey(tenantID, "agents", ""))
}
