package store

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/agentos/agentos/core"
	bolt "go.etcd.io/bbolt"
)

// Tools live at tenant/{t}/tools/{tool_id}.

var _ core.ToolRegistryPort = (*Store)(nil)

func toolKey(tenantID, toolID string) []byte { return TenantKey(tenantID, "tools", toolID) }

// PutTool implements core.ToolRegistryPort.
func (s *Store) PutTool(ctx context.Context, td core.ToolDescriptor) (core.ToolDescriptor, error) {
	var out core.ToolDescriptor
	err := s.update(ctx, func(tx *bolt.Tx) error {
		var prev core.ToolDescriptor
		ok, err := getJSON(Data(tx), toolKey(td.TenantID, td.ToolID), &prev)
		if err != nil {
			return err
		}
		now := core.Now()
		t := td
		t.CreatedAt = &now
		if ok && prev.CreatedAt != nil {
			t.CreatedAt = prev.CreatedAt
		}
		t.UpdatedAt = &now
		out = t
		return putJSON(Data(tx), toolKey(t.TenantID, t.ToolID), t)
	})
	return out, err
}

// GetTool implements core.ToolRegistryPort.
func (s *Store) GetTool(ctx context.Context, tenantID, toolID string) (core.ToolDescriptor, error) {
	var out core.ToolDescriptor
	err := s.view(func(tx *bolt.Tx) error {
		ok, err := getJSON(Data(tx), toolKey(tenantID, toolID), &out)
		if err == nil && !ok {
			err = core.NotFound("tool", toolID)
		}
		return err
	})
	return out, err
}

// ListTools implements core.ToolRegistryPort.
func (s *Store) ListTools(ctx context.Context, tenantID string) ([]core.ToolDescriptor, error) {
	out := []core.ToolDescriptor{}
	var derr error
	err := s.view(func(tx *bolt.Tx) error {
		scanPrefix(Data(tx), TenantKey(tenantID, "tools", ""), false, func(k, v []byte) bool {
			var t core.ToolDescriptor
			if err := json.Unmarshal(v, &t); err != nil {
				derr = fmt.Errorf("decode %s: %w", k, err)
				return false
			}
			out = append(out, t)
			return true
		})
		return derr
	})
	return out, err
}
