package core_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/agentos/agentos/core"
)

// checkSameAsMarshal fails unless AppendJSON writes json.Marshal's bytes.
func checkSameAsMarshal(t *testing.T, ev core.Event) {
	t.Helper()
	want, werr := json.Marshal(ev)
	got, gerr := ev.AppendJSON([]byte("prefix"))
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("errors differ: marshal %v, append %v", werr, gerr)
	}
	if werr != nil {
		return
	}
	if !bytes.HasPrefix(got, []byte("prefix")) || !bytes.Equal(got[len("prefix"):], want) {
		t.Fatalf("AppendJSON differs from json.Marshal:\n got  %s\n want %s", got[len("prefix"):], want)
	}
}

func TestEventAppendJSON_SameBytesAsMarshal(t *testing.T) {
	step := "stp_01"
	odd := "a\"b\\c\n\r\t\b\f\x00\x1f<tag>&amp; \u2028\u2029 é 日本 \xff\xfe bad \U0001F600"
	base := core.Event{EventID: "evt_01", Sequence: 42, Time: time.Date(2026, 11, 29, 17, 0, 1, 123456789, time.UTC),
		Type: core.EventRunStarted, TenantID: "tnt_a", AgentID: "agt_a", RunID: "run_01",
		Trace: core.EventTrace{Traceparent: "00-abc-def-01", SpanID: "0123456789abcdef"}, Payload: json.RawMessage(`{"status":"running"}`)}
	cases := []func(*core.Event){
		func(*core.Event) {},
		func(e *core.Event) { e.StepID = &step },
		func(e *core.Event) { e.StepID = &odd; e.Type = odd; e.TenantID = odd },
		func(e *core.Event) { e.Trace = core.EventTrace{} },
		func(e *core.Event) { e.Trace.Traceparent = "" },
		func(e *core.Event) { e.Trace.SpanID = "" },
		func(e *core.Event) { e.Payload = nil },
		func(e *core.Event) { e.Payload = json.RawMessage(`null`) },
		func(e *core.Event) { e.Time = time.Time{} },
		func(e *core.Event) { e.Time = time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600)) },
		func(e *core.Event) { e.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, // Marshal refuses
		func(e *core.Event) { e.Sequence = -7 },
		// Payloads as PostgreSQL's jsonb gives them back (spaces, raw <>&),
		// with escapes and strings holding JSON's own characters.
		func(e *core.Event) { e.Payload = json.RawMessage(`{"a": 1, "b": [true, null, "x <y> & z"]}`) },
		func(e *core.Event) { e.Payload = json.RawMessage("{\n\t\"a\" : \"\\\"quoted\\\" \\\\ \"\r\n}") },
		func(e *core.Event) { e.Payload = json.RawMessage(`{"k":"line\u2028sep"}`) },
		func(e *core.Event) { e.Payload = json.RawMessage(`{"k":"esc \" \\ \u003c","n":[1,2.5,-3e2],"o":{}}`) },
		func(e *core.Event) { e.Payload = json.RawMessage(`{"k":"has spaces inside","m":"é日本"}`) },
	}
	for _, mod := range cases {
		ev := base
		mod(&ev)
		checkSameAsMarshal(t, ev)
		checkRelative(t, ev)
	}
	// Every single byte in a string field.
	for c := 0; c < 256; c++ {
		ev := base
		ev.RunID = "r" + string([]byte{byte(c)}) + "x"
		checkSameAsMarshal(t, ev)
	}
	// A real payload as the executor builds it.
	payload, _ := json.Marshal(map[string]any{"tool_call_id": "call_1", "output": map[string]any{"text": "<b>hi</b> & bye"},
		"error": nil, "duration_ms": 3})
	ev := base
	ev.Payload = payload
	checkSameAsMarshal(t, ev)
}

func FuzzEventAppendJSON(f *testing.F) {
	f.Add("run_01", "agentos.run.started", `{"status":"running"}`, int64(1))
	f.Add("a<b>&\u2028", "\xff", `{"a": "b"}`, int64(-1))
	f.Fuzz(func(t *testing.T, s, typ, payload string, seq int64) {
		if !json.Valid([]byte(payload)) {
			return // payloads are valid JSON by contract
		}
		ev := core.Event{EventID: s, Sequence: seq, Time: time.Unix(seq%1e10, seq%1e9).UTC(), Type: typ, TenantID: s,
			AgentID: typ, RunID: s, StepID: &typ, Trace: core.EventTrace{Traceparent: s}, Payload: json.RawMessage(payload)}
		checkSameAsMarshal(t, ev)
		checkRelative(t, ev)
	})
}

// checkRelative fails unless AppendRelativeJSON writes AppendJSON's bytes
// without sequence, tenant_id, agent_id, run_id and trace.traceparent: the
// same JSON once those are taken out of the whole event.
func checkRelative(t *testing.T, ev core.Event) {
	t.Helper()
	whole, werr := ev.AppendJSON(nil)
	got, gerr := ev.AppendRelativeJSON([]byte("prefix"))
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("errors differ: whole %v, relative %v", werr, gerr)
	}
	if werr != nil {
		return
	}
	if !bytes.HasPrefix(got, []byte("prefix")) {
		t.Fatalf("relative form lost the prefix: %q", got)
	}
	got = got[len("prefix"):]
	var m map[string]any
	if err := json.Unmarshal(whole, &m); err != nil {
		t.Fatalf("whole event does not decode: %v", err)
	}
	for _, k := range []string{"sequence", "tenant_id", "agent_id", "run_id"} {
		delete(m, k)
	}
	delete(m["trace"].(map[string]any), "traceparent")
	want, _ := json.Marshal(m)
	var gm map[string]any
	if err := json.Unmarshal(got, &gm); err != nil {
		t.Fatalf("relative form is not JSON: %v\n%s", err, got)
	}
	again, _ := json.Marshal(gm)
	if !bytes.Equal(again, want) {
		t.Fatalf("relative form holds other fields:\n got  %s\n want %s", got, want)
	}
	// Decoded into an event and given back its run's fields, it is the
	// event (as the whole form decodes).
	var back, full core.Event
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(whole, &full); err != nil {
		t.Fatal(err)
	}
	if back.TenantID != "" || back.Sequence != 0 || back.Trace.Traceparent != "" {
		t.Fatalf("relative form carried a run field: %+v", back)
	}
	back.Sequence, back.TenantID, back.AgentID, back.RunID, back.Trace.Traceparent = full.Sequence, full.TenantID, full.AgentID, full.RunID, full.Trace.Traceparent
	b1, _ := json.Marshal(back)
	b2, _ := json.Marshal(full)
	if !bytes.Equal(b1, b2) {
		t.Fatalf("relative form reads back as\n %s\nwant\n %s", b1, b2)
	}
}
