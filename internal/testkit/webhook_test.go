package testkit

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"
)

// A Webhook answers what answer says, keeps each call and signals it; a
// call reads its fields and checks its signature.
func TestWebhook_RecordsAnswersAndChecksSignatures(t *testing.T) {
	hook := StartWebhook(t, func(c WebhookCall) (int, string) {
		if c.Input()["text"] == "fail" {
			return 502, `{"error":{"code":"dependency_unavailable"}}`
		}
		return 200, `{"output":{"ok":true}}`
	})
	body := `{"run_id":"run_1","input":{"text":"hi"}}`
	m := hmac.New(sha256.New, []byte("s3cret"))
	m.Write([]byte(body))
	sig := "sha256=" + hex.EncodeToString(m.Sum(nil))
	Do(t, "POST", hook.URL, "", body, "X-AgentOS-Signature", sig).Expect(t, "signed call", 200)
	Do(t, "POST", hook.URL, "", `{"input":{"text":"fail"}}`).Expect(t, "failing call", 502)
	c := Await(t, "the first call", time.Second, hook.Got)
	if c.Field("run_id") != "run_1" || c.Input()["text"] != "hi" || !c.SignedWith("s3cret") || c.SignedWith("other") {
		t.Fatalf("call %s %v: run_id %q, signed %v", c.Body, c.Header, c.Field("run_id"), c.SignedWith("s3cret"))
	}
	if calls := hook.Calls(); len(calls) != 2 || calls[1].SignedWith("s3cret") || calls[1].Field("run_id") != "" {
		t.Fatalf("calls %d", len(calls))
	}
}
