package store

import (
	"context"

	"github.com/agentos/agentos/core"
	bolt "go.etcd.io/bbolt"
)

// Tools live at tenant/{t}/tools/{tool_id}.

var _ core.ToolRegistryPort = (*Store)(nil)

func toolKey(tenantID, toolID string) []byte { return TenantKey(tenantID, "tools", toolID) }

// PutTool implements core.ToolRegistryPort (core.NextToolDescriptor).
func (s *Store) PutTool(ctx context.Context, td core.ToolDescriptor) (core.ToolDescriptor, error) {
	var out core.ToolDescriptor
	err := s.update(ctx, func(tx *bolt.Tx) error {
		var err error
		out, _, err = replaceJSON(Data(tx), toolKey(td.TenantID, td.ToolID), func(prev *core.ToolDescriptor) core.ToolDescriptor {
			return core.NextToolDescriptor(prev, td, core.Now())
		})
		return err
	})
	return out, err
}

// GetTool implements core.ToolRegistryPort.
func (s *Store) GetTool(ctx context.Context, tenantID, toolID string) (core.ToolDescriptor, error) {
	return getOne[core.ToolDescriptor](s, Data, toolKey(tenantID, toolID), "tool", toolID)
}

// ListTools implements core.ToolRegistryPort.
func (s *Store) ListTools(ctx context.Context, tenantID string) ([]core.ToolDescriptor, error) {
	return listJSON[core.ToolDescriptor](s, Data, TenantKey(tenantID, "tools", ""))
}
