package store_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/store"
)

func TestStore_RecordUsage_AddsAndReplays(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(filepath.Join(t.TempDir(), "a.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	at := time.Date(2026, 11, 25, 17, 30, 0, 0, time.UTC)
	day := core.UsagePeriod(core.WindowDay, at)
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := core.UsageDelta{TenantID: "tnt_a", Window: core.WindowDay, Period: day, Requests: 1, InputTokens: 10, OutputTokens: 5, CostUSD: 0.5, At: at}
			if err := st.RecordUsage(ctx, []core.UsageDelta{d}, nil); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	rec, err := st.GetUsage(ctx, "tnt_a", core.WindowDay, day)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Requests != 16 || rec.TotalTokens != 240 || rec.CostUSD != 8 || rec.Period != "2026-11-25" {
		t.Fatalf("record = %+v, want 16 requests, 240 tokens, $8", rec)
	}
	if other, _ := st.GetUsage(ctx, "tnt_b", core.WindowDay, day); other.TotalTokens != 0 {
		t.Fatalf("tenant b sees %+v", other)
	}
	first := core.ModelReplay{TenantID: "tnt_a", RequestID: "req_1", Operation: "chat", Response: json.RawMessage(`{"n":1}`)}
	second := first
	second.Response = json.RawMessage(`{"n":2}`)
	if err := st.RecordUsage(ctx, nil, []core.ModelReplay{first}); err != nil {
		t.Fatal(err)
	}
	if err := st.RecordUsage(ctx, nil, []core.ModelReplay{second}); err != nil {
		t.Fatal(err)
	}
	got, err := st.GetReplay(ctx, "tnt_a", "req_1")
	if err != nil || string(got.Response) != `{"n":1}` {
		t.Fatalf("replay = %s, %v; want the first answer", got.Response, err)
	}
	if _, err := st.GetReplay(ctx, "tnt_b", "req_1"); !core.IsCode(err, core.CodeNotFound) {
		t.Fatalf("other tenant's replay: err = %v, want not_found", err)
	}
	list, err := st.ListUsage(ctx, "tnt_a", 0)
	if err != nil || len(list) != 1 {
		t.Fatalf("ListUsage = %+v, %v; want the one day record", list, err)
	}
}

func TestUsagePeriod(t *testing.T) {
	at := time.Date(2026, 11, 25, 17, 30, 59, 0, time.FixedZone("x", 3600))
	for w, want := range map[string]string{core.WindowDay: "2026-11-25", core.WindowHour: "2026-11-25T16", core.WindowMinute: "2026-11-25T16:30"} {
		if got := core.UsagePeriod(w, at); got != want {
			t.Errorf("UsagePeriod(%s) = %s, want %s", w, got, want)
		}
	}
}
