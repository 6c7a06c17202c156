package fed

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/agentos/agentos/core"
)

// relayStream is what the relay reads from a peer: n run events as the
// sseWriter writes them, with a keep-alive comment every 100 events.
func relayStream(tb testing.TB, n int) []byte {
	tb.Helper()
	rec := httptest.NewRecorder()
	w := newSSEWriter(rec)
	step := "stp_01"
	for i := 1; i <= n; i++ {
		ev := core.Event{EventID: "evt_" + strconv.Itoa(i), Sequence: int64(i), Time: time.Unix(1700000000, 0).UTC(),
			Type: "agentos.step.completed", TenantID: "tnt_demo", AgentID: "agt_sample_echo_v1", RunID: "run_01HZX",
			StepID: &step, Trace: core.EventTrace{Traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", SpanID: "b7ad6b7169203331"},
			Payload: json.RawMessage(`{"output":{"type":"text","text":"a step's answer of some sixty bytes or so, as runs write"}}`)}
		if err := w.eventNoFlush(ev); err != nil {
			tb.Fatal(err)
		}
		if i%100 == 0 {
			if err := w.ping(); err != nil {
				tb.Fatal(err)
			}
		}
	}
	return rec.Body.Bytes()
}

// BenchmarkSSEReader_RelayStream reads 1,000 run events through the
// relay's reader (frame, filter by name, decode), the relay's hot path
// without the network; the allocations are per 1,000 events.
func BenchmarkSSEReader_RelayStream(b *testing.B) {
	const n = 1000
	in := relayStream(b, n)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		rd := newSSEReader(bytes.NewReader(in))
		got := 0
		for {
			_, err := rd.next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			got++
		}
		if got != n {
			b.Fatalf("%d events, want %d", got, n)
		}
	}
}
