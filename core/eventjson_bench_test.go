package core_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/agentos/agentos/core"
)

// BenchmarkEventAppendJSON measures the two encodings of a typical step
// event (the store writes the relative one, SSE the whole one): both are
// on every event's path, so neither may allocate beyond its buffer.
func BenchmarkEventAppendJSON(b *testing.B) {
	step := "stp_01JBENCH0000000000000000"
	ev := core.Event{
		EventID: "evt_01JBENCH0000000000000000", Sequence: 42,
		Time:     time.Date(2026, 11, 29, 22, 0, 0, 123456789, time.UTC),
		Type:     "step.completed",
		TenantID: "tnt_01JBENCH0000000000000000", AgentID: "agt_01JBENCH0000000000000000",
		RunID: "run_01JBENCH0000000000000000", StepID: &step,
		Trace:   core.EventTrace{Traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", SpanID: "b7ad6b7169203331"},
		Payload: json.RawMessage(`{"step_id":"stp_01JBENCH0000000000000000","status":"completed","output":{"text":"hello"}}`),
	}
	for _, c := range []struct {
		name   string
		encode func([]byte) ([]byte, error)
	}{{"whole", ev.AppendJSON}, {"relative", ev.AppendRelativeJSON}} {
		b.Run(c.name, func(b *testing.B) {
			buf := make([]byte, 0, 1024)
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if buf, err = c.encode(buf[:0]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
