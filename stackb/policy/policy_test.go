package policy_test

import (
	"strings"
	"testing"

	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/stackb/policy"
)

func TestDetect_EachKindWithExactOffsets(t *testing.T) {
	tests := []struct {
		name, text, kind, span string
	}{
		{"email", "write to jane.doe+x@mail.example.co.uk please", policy.KindEmail, "jane.doe+x@mail.example.co.uk"},
		{"phone us", "call (415) 555-0134 today", policy.KindPhone, "(415) 555-0134"},
		{"phone dashed", "call 415-555-0134", policy.KindPhone, "415-555-0134"},
		{"phone international", "ring +44 20 7946 0958 now", policy.KindPhone, "+44 20 7946 0958"},
		{"card visa spaced", "card 4111 1111 1111 1111 exp", policy.KindCard, "4111 1111 1111 1111"},
		{"card amex plain", "amex 378282246310005.", policy.KindCard, "378282246310005"},
		{"card dashed", "pay with 5555-5555-5555-4444", policy.KindCard, "5555-5555-5555-4444"},
		{"ssn", "ssn 123-45-6789 on file", policy.KindNationalID, "123-45-6789"},
		{"ipv4", "host 192.168.10.254 is down", policy.KindIP, "192.168.10.254"},
		{"ipv6", "v6 2001:db8::8a2e:370:7334 up", policy.KindIP, "2001:db8::8a2e:370:7334"},
		{"ipv6 loopback", "bind ::1 only", policy.KindIP, "::1"},
		{"openai key", "key sk-proj-abcdefghijklmnopqrstuvwx123 ok", policy.KindSecret, "sk-proj-abcdefghijklmnopqrstuvwx123"},
		{"aws key", "AKIAIOSFODNN7EXAMPLE is mine", policy.KindSecret, "AKIAIOSFODNN7EXAMPLE"},
		{"github token", "t=ghp_abcdefghijklmnopqrstuvwxyz0123456789", policy.KindSecret, "ghp_abcdefghijklmnopqrstuvwxyz0123456789"},
		{"private key", "x -----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY----- y", policy.KindPrivateKey,
			"-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----"},
		{"utf8 before", "héllo wörld — mail ana@example.org", policy.KindEmail, "ana@example.org"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spans := policy.Detect(tt.text, nil)
			if len(spans) != 1 {
				t.Fatalf("Detect(%q) = %+v, want one %s", tt.text, spans, tt.kind)
			}
			s := spans[0]
			wantStart := strings.Index(tt.text, tt.span)
			if s.Kind != tt.kind || s.Start != wantStart || s.End != wantStart+len(tt.span) {
				t.Fatalf("span = %+v (%q), want %s [%d,%d)", s, tt.text[s.Start:s.End], tt.kind, wantStart, wantStart+len(tt.span))
			}
		})
	}
}

func TestDetect_NegativesNotFlagged(t *testing.T) {
	tests := []struct{ name, text string }{
		{"luhn fails 16 digits", "order 4111 1111 1111 1112 shipped"},
		{"luhn fails plain", "ref 1234567890123456"},
		{"ssn never issued area 000", "id 000-12-3456"},
		{"ssn area 666", "id 666-12-3456"},
		{"octet over 255", "version 999.1.2.3"},
		{"time of day", "meet at 12:30:45"},
		{"short number", "room 1234"},
		{"plain prose", "the quick brown fox jumps over the lazy dog"},
		{"no tld", "user@localhost"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if spans := policy.Detect(tt.text, nil); len(spans) != 0 {
				t.Fatalf("Detect(%q) = %+v, want nothing", tt.text, spans)
			}
		})
	}
}

func TestRuleset_BlockVersusRedact(t *testing.T) {
	eng, err := policy.NewEngine([]policy.Ruleset{{ID: "pol_acme", TenantID: "tnt_acme",
		PII:         map[string]string{policy.KindEmail: policy.ActionBlock, policy.KindPhone: policy.ActionRedact},
		DeniedTerms: []string{"Project-X"}, DeniedPatterns: []string{`(?i)\bwire \$\d+`},
		AllowedTools: []string{"tool.echo"}, MaxTokens: 100}})
	if err != nil {
		t.Fatal(err)
	}
	def, _ := eng.Ruleset(policy.DefaultRulesetID, "tnt_any")
	acme, ok := eng.Ruleset("pol_acme", "tnt_acme")
	if !ok {
		t.Fatal("pol_acme not visible to its tenant")
	}
	if _, ok := eng.Ruleset("pol_acme", "tnt_other"); ok {
		t.Fatal("pol_acme visible to another tenant")
	}
	tests := []struct {
		name     string
		rs       *policy.Ruleset
		text     string
		decision string
		reasons  []string
		redacted string
	}{
		{"default redacts email", def, "to a@b.io now", core.DecisionRedacted, []string{"pii.email"}, "to [REDACTED:EMAIL] now"},
		{"default redacts card and ssn", def, "4111111111111111 and 123-45-6789", core.DecisionRedacted,
			[]string{"pii.card_number", "pii.national_id"}, "[REDACTED:CARD_NUMBER] and [REDACTED:NATIONAL_ID]"},
		{"default blocks secrets", def, "use sk-abcdefghijklmnopqrstuvwxyz", core.DecisionBlocked, []string{"pii.secret"}, ""},
		{"default allows clean text", def, "hello", core.DecisionAllowed, []string{}, "hello"},
		{"tenant blocks email", acme, "to a@b.io", core.DecisionBlocked, []string{"pii.email"}, ""},
		{"tenant redacts phone", acme, "ring 415-555-0134", core.DecisionRedacted, []string{"pii.phone"}, "ring [REDACTED:PHONE]"},
		{"tenant ignores ip", acme, "at 10.0.0.1", core.DecisionAllowed, []string{}, "at 10.0.0.1"},
		{"denied term any case", acme, "about project-x plans", core.DecisionBlocked, []string{"deny.term:Project-X"}, ""},
		{"denied pattern", acme, "please WIRE $5000", core.DecisionBlocked, []string{`deny.pattern:(?i)\bwire \$\d+`}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var res policy.Result
			out := tt.rs.CheckText(tt.text, &res)
			res.Final()
			if res.Decision != tt.decision || strings.Join(res.Reasons, ",") != strings.Join(tt.reasons, ",") {
				t.Fatalf("decision %s reasons %v, want %s %v", res.Decision, res.Reasons, tt.decision, tt.reasons)
			}
			if tt.redacted != "" && out != tt.redacted {
				t.Fatalf("redacted text %q, want %q", out, tt.redacted)
			}
		})
	}
	t.Run("tools and tokens", func(t *testing.T) {
		var res policy.Result
		acme.CheckTools([]string{"tool.echo", "tool.http.fetch"}, &res)
		acme.CheckTokens(101, &res)
		res.Final()
		if res.Decision != core.DecisionBlocked || strings.Join(res.Reasons, ",") != "tool.denied:tool.http.fetch,limit.max_tokens" {
			t.Fatalf("got %s %v", res.Decision, res.Reasons)
		}
	})
}

func TestNewEngine_BadRulesetNamesField(t *testing.T) {
	tests := []struct {
		rs   policy.Ruleset
		want string
	}{
		{policy.Ruleset{ID: "x", PII: map[string]string{"dna": "block"}}, "rulesets[0].pii.dna"},
		{policy.Ruleset{ID: "x", PII: map[string]string{"email": "shred"}}, "rulesets[0].pii.email"},
		{policy.Ruleset{ID: "x", DeniedPatterns: []string{"("}}, "rulesets[0].denied_patterns[0]"},
		{policy.Ruleset{}, "rulesets[0].id"},
	}
	for _, tt := range tests {
		if _, err := policy.NewEngine([]policy.Ruleset{tt.rs}); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewEngine(%+v) = %v, want an error naming %s", tt.rs, err, tt.want)
		}
	}
}

func BenchmarkCheckText_Clean(b *testing.B) {
	eng, _ := policy.NewEngine(nil)
	rs, _ := eng.Ruleset(policy.DefaultRulesetID, "")
	text := "Summarize the quarterly report for the growth team, focusing on churn and activation."
	b.ReportAllocs()
	for b.Loop() {
		var res policy.Result
		rs.CheckText(text, &res)
	}
}
