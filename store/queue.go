package store

import (
	"context"

	"github.com/agentos/agentos/core"
	bolt "go.etcd.io/bbolt"
)

// The durable queue is the index "active/{run_id}" → tenant_id: an entry is
// written in the run's create transaction and deleted in the transaction that
// makes it terminal, so after a crash the index names exactly the runs that
// still need work. Run ids are ULIDs, so the index is in creation order.

func activeKey(runID string) []byte { return []byte("active/" + runID) }

var _ core.QueuePort = (*Store)(nil)

// ActiveRuns implements core.QueuePort.
func (s *Store) ActiveRuns(ctx context.Context) ([]core.RunRef, error) {
	out := []core.RunRef{}
	err := s.view(func(tx *bolt.Tx) error {
		prefix := []byte("active/")
		scanPrefix(Index(tx), prefix, false, func(k, v []byte) bool {
			ref := core.RunRef{TenantID: string(v), RunID: string(k[len(prefix):])}
			var rec struct {
				Status string `json:"status"`
			}
			if ok, err := getJSON(Data(tx), runKey(ref.TenantID, ref.RunID), &rec); err == nil && ok {
				ref.Status = rec.Status
			}
			out = append(out, ref)
			return true
		})
		return nil
	})
	return out, err
}
