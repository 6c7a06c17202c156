package stackb

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/stackb/policy"
	"github.com/agentos/agentos/stackb/provider"
)

// KindBuiltin is the provider kind that is always there (unless the file
// disables it) with the builtin models. Every kind, this one included,
// registers itself in stackb/provider (one file per kind).
const KindBuiltin = provider.BuiltinName

// ProvidersFile is the --providers-file document. "rulesets" is an
// AgentOS addition (optional): named policy rulesets tenants may select.
type ProvidersFile struct {
	Providers []ProviderConfig    `json:"providers"`
	Tiers     map[string][]string `json:"tiers"`
	Canary    []CanaryRule        `json:"canary"`
	// DisableBuiltin removes the builtin provider.
	DisableBuiltin bool             `json:"disable_builtin,omitempty"`
	Rulesets       []policy.Ruleset `json:"rulesets,omitempty"`
}

// ProviderConfig is one provider of the file.
type ProviderConfig struct {
	Name       string        `json:"name"`
	Kind       string        `json:"kind"`
	BaseURL    string        `json:"base_url,omitempty"`
	APIKeyEnv  string        `json:"api_key_env,omitempty"`
	APIKeyFile string        `json:"api_key_file,omitempty"`
	TimeoutMS  int           `json:"timeout_ms,omitempty"`
	Models     []ModelConfig `json:"models"`
}

// ModelConfig is one model of a provider, with its price.
type ModelConfig struct {
	ModelID              string   `json:"model_id"`
	Capabilities         []string `json:"capabilities"`
	Tier                 string   `json:"tier,omitempty"`
	ContextWindowTokens  int      `json:"context_window_tokens,omitempty"`
	MaxOutputTokens      int      `json:"max_output_tokens,omitempty"`
	USDPer1kInputTokens  float64  `json:"usd_per_1k_input_tokens,omitempty"`
	USDPer1kOutputTokens float64  `json:"usd_per_1k_output_tokens,omitempty"`
}

// CanaryRule sends Percent of the matching traffic of a tier to Route.
type CanaryRule struct {
	TenantID *string `json:"tenant_id"`
	AgentID  *string `json:"agent_id"`
	Tier     string  `json:"tier"`
	Route    string  `json:"route"`
	Percent  float64 `json:"percent"`
}

// model is a routable backend/model with everything routing needs.
type model struct {
	ref     string // backend/model
	backend string
	cfg     ModelConfig
	prov    provider.Provider
	timeout time.Duration
}

func (m *model) can(op string) bool { return slices.Contains(m.cfg.Capabilities, op) }

// cost estimates the price of a call.
func (m *model) cost(in, out int) float64 {
	return float64(in)/1000*m.cfg.USDPer1kInputTokens + float64(out)/1000*m.cfg.USDPer1kOutputTokens
}

// catalog is the loaded providers file: models by ref, tier chains, canaries.
type catalog struct {
	models   map[string]*model
	order    []*model // file order, for listing and bare ids
	backends []string
	tiers    map[string][]*model
	canary   []CanaryRule
	rulesets []policy.Ruleset
	// secretReads names each provider key read ("env:NAME", "file:path").
	secretReads []secretRead
}

type secretRead struct{ ref, provider string }

func builtinModels() []ModelConfig {
	return []ModelConfig{
		{ModelID: provider.EchoModel, Capabilities: []string{core.OpChat}, ContextWindowTokens: 32768, MaxOutputTokens: 4096},
		{ModelID: provider.HashEmbed, Capabilities: []string{core.OpEmbed}, ContextWindowTokens: 8192},
	}
}

// loadCatalog reads path ("" = builtin only) and validates it. Errors name
// the offending field, e.g. `providers[1].kind: unknown kind "foo"`.
func loadCatalog(path string, hc *http.Client) (*catalog, error) {
	var f ProvidersFile
	if path != "" {
		raw, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("providers file: %w", err)
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			return nil, fmt.Errorf("providers file %s: %w", path, err)
		}
	}
	return buildCatalog(f, hc)
}

func buildCatalog(f ProvidersFile, hc *http.Client) (*catalog, error) {
	c := &catalog{models: map[string]*model{}, tiers: map[string][]*model{}, canary: f.Canary, rulesets: f.Rulesets}
	addModel := func(backend string, mc ModelConfig, p provider.Provider, timeout time.Duration) {
		m := &model{ref: backend + "/" + mc.ModelID, backend: backend, cfg: mc, prov: p, timeout: timeout}
		c.models[m.ref] = m
		c.order = append(c.order, m)
	}
	hasBuiltin := !f.DisableBuiltin
	for _, p := range f.Providers {
		if p.Kind == KindBuiltin {
			hasBuiltin = true
		}
	}
	if hasBuiltin {
		c.backends = append(c.backends, provider.BuiltinName)
		for _, mc := range builtinModels() {
			addModel(provider.BuiltinName, mc, provider.Builtin{}, 0)
		}
	}
	for i, p := range f.Providers {
		field := fmt.Sprintf("providers[%d]", i)
		if p.Kind == KindBuiltin {
			continue
		}
		if p.Name == "" {
			return nil, fmt.Errorf("%s.name: required", field)
		}
		if p.Name == provider.BuiltinName || slices.Contains(c.backends, p.Name) || strings.Contains(p.Name, "/") {
			return nil, fmt.Errorf("%s.name: %q is taken or contains '/'", field, p.Name)
		}
		key, err := apiKey(p, field)
		if err != nil {
			return nil, err
		}
		if p.APIKeyFile != "" {
			c.secretReads = append(c.secretReads, secretRead{"file:" + p.APIKeyFile, p.Name})
		} else if p.APIKeyEnv != "" {
			c.secretReads = append(c.secretReads, secretRead{"env:" + p.APIKeyEnv, p.Name})
		}
		timeout := 30 * time.Second
		if p.TimeoutMS > 0 {
			timeout = time.Duration(p.TimeoutMS) * time.Millisecond
		}
		kind, ok := provider.Lookup(p.Kind)
		if !ok {
			return nil, fmt.Errorf("%s.kind: unknown kind %q (want %s)", field, p.Kind, strings.Join(provider.Kinds(), ", "))
		}
		prov, err := kind.New(provider.Spec{Name: p.Name, BaseURL: p.BaseURL, APIKey: key, Client: hc})
		if err != nil {
			return nil, fmt.Errorf("%s.%w", field, err)
		}
		if len(p.Models) == 0 {
			return nil, fmt.Errorf("%s.models: at least one model is required", field)
		}
		c.backends = append(c.backends, p.Name)
		for j, mc := range p.Models {
			mf := fmt.Sprintf("%s.models[%d]", field, j)
			if mc.ModelID == "" {
				return nil, fmt.Errorf("%s.model_id: required", mf)
			}
			if len(mc.Capabilities) == 0 {
				return nil, fmt.Errorf("%s.capabilities: required", mf)
			}
			for k, cp := range mc.Capabilities {
				if cp != core.OpChat && cp != core.OpEmbed {
					return nil, fmt.Errorf("%s.capabilities[%d]: unknown capability %q (want chat or embed)", mf, k, cp)
				}
			}
			if mc.Tier != "" && !core.KnownTier(mc.Tier) {
				return nil, fmt.Errorf("%s.tier: unknown tier %q", mf, mc.Tier)
			}
			if _, dup := c.models[p.Name+"/"+mc.ModelID]; dup {
				return nil, fmt.Errorf("%s.model_id: duplicate %q", mf, mc.ModelID)
			}
			addModel(p.Name, mc, prov, timeout)
		}
	}
	if len(c.order) == 0 {
		return nil, fmt.Errorf("providers: no model left (builtin disabled and none configured)")
	}
	// Tiers: the file's chains; tiers it leaves out get every model of that
	// tier (builtin models serve every tier when nothing else does).
	for tier, refs := range f.Tiers {
		if !core.KnownTier(tier) {
			return nil, fmt.Errorf("tiers.%s: unknown tier (want fast, balanced or premium)", tier)
		}
		for i, ref := range refs {
			m, ok := c.models[ref]
			if !ok {
				return nil, fmt.Errorf("tiers.%s[%d]: unknown model %q (want backend/model_id of a configured provider)", tier, i, ref)
			}
			c.tiers[tier] = append(c.tiers[tier], m)
		}
	}
	for _, tier := range core.ModelTiers() {
		if _, ok := f.Tiers[tier]; ok {
			continue
		}
		for _, m := range c.order {
			if m.cfg.Tier == tier || (m.backend == provider.BuiltinName) {
				c.tiers[tier] = append(c.tiers[tier], m)
			}
		}
	}
	for i, cr := range f.Canary {
		field := fmt.Sprintf("canary[%d]", i)
		if !core.KnownTier(cr.Tier) {
			return nil, fmt.Errorf("%s.tier: unknown tier %q", field, cr.Tier)
		}
		if _, ok := c.models[cr.Route]; !ok {
			return nil, fmt.Errorf("%s.route: unknown model %q", field, cr.Route)
		}
		if cr.Percent < 0 || cr.Percent > 100 {
			return nil, fmt.Errorf("%s.percent: must be between 0 and 100", field)
		}
	}
	if _, err := policy.NewEngine(f.Rulesets); err != nil {
		return nil, err
	}
	return c, nil
}

// apiKey reads a provider's key from the environment or a file; keys never
// live in the providers file itself.
func apiKey(p ProviderConfig, field string) (string, error) {
	switch {
	case p.APIKeyFile != "":
		raw, err := os.ReadFile(p.APIKeyFile)
		if err != nil {
			return "", fmt.Errorf("%s.api_key_file: %v", field, err)
		}
		return strings.TrimSpace(string(raw)), nil
	case p.APIKeyEnv != "":
		return os.Getenv(p.APIKeyEnv), nil
	}
	return "", nil
}
