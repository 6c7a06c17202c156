package core

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// SealAuditJSON's bytes are exactly json.Marshal of the sealed record, and
// the record verifies after a round trip through JSON, whether its details
// needed normalising (a struct, a large integer) or not.
func TestSealAuditJSON_StoredBytesAndRoundTrip(t *testing.T) {
	type attempt struct {
		Ref  string `json:"route"`
		Code string `json:"error_code,omitempty"`
	}
	cases := map[string]map[string]any{
		"simple":        {"model_ref": "tier:fast", "input_tokens": 12, "cost_usd": 0.25, "ok": true, "none": nil, "tags": []string{"a", "<b>"}},
		"nested":        {"reasons": []any{"x", map[string]any{"n": int64(3)}}, "m": map[string]string{"k": "v"}},
		"struct":        {"attempts": []attempt{{Ref: "b/m", Code: "timeout"}}},
		"large integer": {"big": int64(1) << 60},
		"float32":       {"f": float32(0.1)},
		"nil details":   nil,
	}
	prev := ""
	for name, details := range cases {
		rec := AuditRecord{TenantID: "tnt_a", PrincipalID: "usr_a", Action: "model.invoke", ObjectType: "model_request",
			ObjectID: "req_1", Outcome: "ok", Details: details, Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("x", 3600))}
		sealed, raw, err := SealAuditJSON(rec, prev)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want, _ := json.Marshal(sealed)
		if !bytes.Equal(raw, want) {
			t.Fatalf("%s: stored bytes differ from json.Marshal:\n%s\n%s", name, raw, want)
		}
		var back AuditRecord
		if err := json.Unmarshal(raw, &back); err != nil {
			t.Fatal(err)
		}
		var chk AuditChainCheck
		chk.prev = prev
		if err := chk.Next(back); err != nil {
			t.Fatalf("%s: read back, the record does not verify: %v", name, err)
		}
		prev = sealed.Hash
	}
}

func TestJSONStable(t *testing.T) {
	for _, v := range []any{nil, "s", 1.5, 3, int64(-7), true, []string{"a"}, []any{1, "x"}, map[string]any{"a": []any{map[string]any{"b": 2}}}} {
		if !jsonStable(v, 0) {
			t.Errorf("%#v: want stable", v)
		}
	}
	for _, v := range []any{float32(0.1), int64(1) << 60, struct{ A int }{1}, []int{1}, map[string]any{"x": struct{}{}}, &struct{}{}} {
		if jsonStable(v, 0) {
			t.Errorf("%#v: want not stable", v)
		}
	}
}
