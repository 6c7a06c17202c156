// Package policy is Stack B's content policy engine: per-tenant rulesets
// that find PII and secrets (with byte offsets), redact or block them,
// block denied terms and patterns, restrict which tools a model may be
// offered, and cap tokens. It knows nothing of HTTP or storage.
package policy

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/agentos/agentos/core"
)

// Actions a ruleset takes on a PII kind.
const (
	ActionRedact = "redact"
	ActionBlock  = "block"
	ActionAllow  = "allow"
)

// DefaultRulesetID is the ruleset of a tenant that names none.
const DefaultRulesetID = "pol_default"

// Ruleset is one named policy. It is read from JSON (the providers file's
// optional "rulesets" list), so its field names are its file format.
type Ruleset struct {
	ID string `json:"id"`
	// TenantID, when set, makes the ruleset usable by that tenant only.
	TenantID string `json:"tenant_id,omitempty"`
	// PII maps a kind (email, phone, card_number, national_id, ip_address,
	// secret, private_key) to redact, block or allow; absent kinds are
	// allowed.
	PII map[string]string `json:"pii"`
	// DeniedTerms block content that contains one of them (case-insensitive).
	DeniedTerms []string `json:"denied_terms,omitempty"`
	// DeniedPatterns block content matching one of these RE2 expressions.
	DeniedPatterns []string `json:"denied_patterns,omitempty"`
	// AllowedTools, when not nil, lists the only tool ids a model may be
	// offered; DeniedTools are never allowed.
	AllowedTools []string `json:"allowed_tools,omitempty"`
	DeniedTools  []string `json:"denied_tools,omitempty"`
	// MaxTokens, when > 0, blocks a call whose input plus requested output
	// tokens exceed it.
	MaxTokens int `json:"max_tokens,omitempty"`

	wanted   map[string]bool
	terms    []string // lower-cased DeniedTerms
	patterns []*regexp.Regexp
}

// Builtin rulesets. pol_default redacts personal data and blocks secrets
// and private keys, which should never reach a third-party model.
func builtinRulesets() []Ruleset {
	return []Ruleset{
		{ID: DefaultRulesetID, PII: map[string]string{
			KindEmail: ActionRedact, KindPhone: ActionRedact, KindCard: ActionRedact, KindNationalID: ActionRedact,
			KindIP: ActionRedact, KindSecret: ActionBlock, KindPrivateKey: ActionBlock}},
		{ID: "pol_strict", PII: map[string]string{
			KindEmail: ActionBlock, KindPhone: ActionBlock, KindCard: ActionBlock, KindNationalID: ActionBlock,
			KindIP: ActionBlock, KindSecret: ActionBlock, KindPrivateKey: ActionBlock}},
		{ID: "pol_permissive", PII: map[string]string{KindPrivateKey: ActionBlock}},
	}
}

// compile validates r and prepares its matchers. field prefixes error
// messages so a bad file names the bad field.
func (r *Ruleset) compile(field string) error {
	if r.ID == "" {
		return fmt.Errorf("%s.id: required", field)
	}
	r.wanted = map[string]bool{}
	for kind, act := range r.PII {
		if !slices.Contains(AllKinds, kind) {
			return fmt.Errorf("%s.pii.%s: unknown kind (want one of %s)", field, kind, strings.Join(AllKinds, ", "))
		}
		switch act {
		case ActionRedact, ActionBlock:
			r.wanted[kind] = true
		case ActionAllow:
		default:
			return fmt.Errorf("%s.pii.%s: unknown action %q (want redact, block or allow)", field, kind, act)
		}
	}
	r.terms = r.terms[:0]
	for _, t := range r.DeniedTerms {
		if t != "" {
			r.terms = append(r.terms, strings.ToLower(t))
		}
	}
	r.patterns = nil
	for i, p := range r.DeniedPatterns {
		re, err := regexp.Compile(p)
		if err != nil {
			return fmt.Errorf("%s.denied_patterns[%d]: %v", field, i, err)
		}
		r.patterns = append(r.patterns, re)
	}
	return nil
}

// Engine holds the rulesets of the node.
type Engine struct {
	sets map[string]*Ruleset
}

// NewEngine returns an engine with the builtin rulesets plus extra (which
// may replace a builtin by id). Errors name the offending field.
func NewEngine(extra []Ruleset) (*Engine, error) {
	e := &Engine{sets: map[string]*Ruleset{}}
	for _, r := range builtinRulesets() {
		if err := r.compile("builtin"); err != nil {
			return nil, err
		}
		e.sets[r.ID] = &r
	}
	for i := range extra {
		r := extra[i]
		if err := r.compile(fmt.Sprintf("rulesets[%d]", i)); err != nil {
			return nil, err
		}
		e.sets[r.ID] = &r
	}
	return e, nil
}

// Ruleset returns the ruleset id as seen by tenantID: a ruleset bound to
// another tenant does not exist for it.
func (e *Engine) Ruleset(id, tenantID string) (*Ruleset, bool) {
	r, ok := e.sets[id]
	if !ok || (r.TenantID != "" && r.TenantID != tenantID) {
		return nil, false
	}
	return r, true
}

// Result is the decision over one or more texts.
type Result struct {
	Decision   string
	Reasons    []string
	Redactions []core.Redaction
	// Blocked counts block findings; RedactedKinds counts redactions by kind.
	Blocked int
}

// Outcome returns the contract's policy_outcome object.
func (r *Result) Outcome() core.PolicyOutcome {
	return core.PolicyOutcome{Decision: r.decision(), Reasons: nonNil(r.Reasons), Redactions: nonNilR(r.Redactions)}
}

func (r *Result) decision() string {
	switch {
	case r.Blocked > 0:
		return core.DecisionBlocked
	case len(r.Redactions) > 0:
		return core.DecisionRedacted
	default:
		return core.DecisionAllowed
	}
}

// Final sets Decision from the findings and returns r.
func (r *Result) Final() *Result {
	r.Decision = r.decision()
	r.Reasons = nonNil(r.Reasons)
	r.Redactions = nonNilR(r.Redactions)
	return r
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilR(s []core.Redaction) []core.Redaction {
	if s == nil {
		return []core.Redaction{}
	}
	return s
}

func (r *Result) reason(s string) {
	if !slices.Contains(r.Reasons, s) {
		r.Reasons = append(r.Reasons, s)
	}
}

// Replacement is the text a redacted span of kind becomes.
func Replacement(kind string) string { return "[REDACTED:" + strings.ToUpper(kind) + "]" }

// CheckText applies the ruleset to text, adding findings to res, and
// returns the text with redact-kind spans replaced (text itself when
// nothing was redacted). Offsets in res are bytes of the original text.
func (rs *Ruleset) CheckText(text string, res *Result) string {
	if text == "" {
		return text
	}
	if len(rs.terms) > 0 {
		lower := strings.ToLower(text)
		for i, t := range rs.terms {
			if strings.Contains(lower, t) {
				res.Blocked++
				res.reason("deny.term:" + rs.DeniedTerms[i])
			}
		}
	}
	for i, re := range rs.patterns {
		if re.MatchString(text) {
			res.Blocked++
			res.reason("deny.pattern:" + rs.DeniedPatterns[i])
		}
	}
	if len(rs.wanted) == 0 {
		return text
	}
	spans := Detect(text, rs.wanted)
	if len(spans) == 0 {
		return text
	}
	var b strings.Builder
	last := 0
	for _, s := range spans {
		res.reason("pii." + s.Kind)
		if rs.PII[s.Kind] == ActionBlock {
			res.Blocked++
		}
		rep := Replacement(s.Kind)
		res.Redactions = append(res.Redactions, core.Redaction{Kind: s.Kind, Start: s.Start, End: s.End, Replacement: rep})
		if b.Cap() == 0 {
			b.Grow(len(text))
		}
		b.WriteString(text[last:s.Start])
		b.WriteString(rep)
		last = s.End
	}
	b.WriteString(text[last:])
	return b.String()
}

// CheckTools adds a block finding for every offered tool the ruleset does
// not permit.
func (rs *Ruleset) CheckTools(toolIDs []string, res *Result) {
	for _, id := range toolIDs {
		if slices.Contains(rs.DeniedTools, id) || (rs.AllowedTools != nil && !slices.Contains(rs.AllowedTools, id)) {
			res.Blocked++
			res.reason("tool.denied:" + id)
		}
	}
}

// CheckTokens adds a block finding when tokens exceed the ruleset's cap.
func (rs *Ruleset) CheckTokens(tokens int, res *Result) {
	if rs.MaxTokens > 0 && tokens > rs.MaxTokens {
		res.Blocked++
		res.reason("limit.max_tokens")
	}
}
