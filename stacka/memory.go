package stacka

import (
	"context"
	"encoding/json"
	"math"
	"sort"
	"strings"

	"github.com/agentos/agentos/core"
)

// MemoryResult is one hit of a memory search.
type MemoryResult struct {
	Key      string          `json:"key"`
	Value    json.RawMessage `json:"value"`
	Metadata map[string]any  `json:"metadata"`
	Score    float64         `json:"score"`
}

func memText(it core.MemoryItem) string {
	var s string
	if json.Unmarshal(it.Value, &s) == nil {
		return it.Key + " " + s
	}
	return it.Key + " " + string(it.Value)
}

func checkMemName(field, v string) error {
	if !core.ValidName(v, 256, "_.:-") {
		return core.Invalid(field, "%s must be 1-256 characters of letters, digits, '.', '_', ':' or '-'", field)
	}
	return nil
}

// putMemory stores a value under the tenant's max_memory_bytes, with an
// embedding for vector search when the embed port answers.
func (s *Service) putMemory(ctx context.Context, a core.Auth, ns, key string, value json.RawMessage, meta map[string]any) (core.MemoryItem, error) {
	tenantID := a.TenantID
	if err := checkMemName("namespace", ns); err != nil {
		return core.MemoryItem{}, err
	}
	if err := checkMemName("key", key); err != nil {
		return core.MemoryItem{}, err
	}
	if meta == nil {
		meta = map[string]any{}
	}
	it := core.MemoryItem{Namespace: ns, Key: key, Value: value, Metadata: meta}
	if vecs, err := s.embed(ctx, a, []string{memText(it)}); err == nil && len(vecs) == 1 {
		it.Vector = vecs[0]
	}
	return s.memory.PutMemory(ctx, tenantID, it, s.tenantLimits(ctx, tenantID).MaxMemoryBytes)
}

func (s *Service) embed(ctx context.Context, a core.Auth, texts []string) ([][]float64, error) {
	resp, err := s.models.Embed(ctx, a, core.ModelRequest{RequestID: core.NewID(core.PrefixRequest), Operation: core.OpEmbed,
		ModelRef: s.cfg.EmbedModelRef, Input: core.ModelInput{Texts: texts, EncodingFormat: "float"}, Once: true})
	if err != nil {
		return nil, modelError(ctx, err)
	}
	out := make([][]float64, len(texts))
	for _, e := range resp.Output.Embeddings {
		if e.Index >= 0 && e.Index < len(out) {
			out[e.Index] = e.Vector
		}
	}
	return out, nil
}

func cosine(a, b []float64) float64 {
	if len(a) != len(b) || len(a) == 0 {
		return 0
	}
	var dot, na, nb float64
	for i := range a {
		dot += a[i] * b[i]
		na += a[i] * a[i]
		nb += b[i] * b[i]
	}
	if na == 0 || nb == 0 {
		return 0
	}
	return dot / (math.Sqrt(na) * math.Sqrt(nb))
}

func words(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127)
	})
}

// searchMemory ranks a namespace's items: keyword mode by the share of
// query words found, vector mode by cosine similarity of embeddings.
func (s *Service) searchMemory(ctx context.Context, a core.Auth, ns, query, mode string, limit int) ([]MemoryResult, error) {
	if err := checkMemName("namespace", ns); err != nil {
		return nil, err
	}
	if mode == "" {
		mode = "keyword"
	}
	if mode != "keyword" && mode != "vector" {
		return nil, core.Invalid("mode", "mode must be keyword or vector")
	}
	if limit <= 0 {
		limit = 10
	}
	limit = min(limit, 100)
	items, err := s.memory.ListMemory(ctx, a.TenantID, ns)
	if err != nil {
		return nil, err
	}
	out := []MemoryResult{}
	if mode == "keyword" {
		q := words(query)
		for _, it := range items {
			have := map[string]bool{}
			for _, w := range words(memText(it)) {
				have[w] = true
			}
			n := 0
			for _, w := range q {
				if have[w] {
					n++
				}
			}
			if len(q) > 0 && n > 0 {
				out = append(out, MemoryResult{Key: it.Key, Value: it.Value, Metadata: it.Metadata, Score: float64(n) / float64(len(q))})
			}
		}
	} else {
		texts := []string{query}
		var missing []int
		for i, it := range items {
			if len(it.Vector) == 0 {
				missing = append(missing, i)
				texts = append(texts, memText(it))
			}
		}
		vecs, err := s.embed(ctx, a, texts)
		if err != nil {
			return nil, err
		}
		for j, i := range missing {
			items[i].Vector = vecs[j+1]
		}
		for _, it := range items {
			out = append(out, MemoryResult{Key: it.Key, Value: it.Value, Metadata: it.Metadata, Score: cosine(vecs[0], it.Vector)})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Score > out[j].Score })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}
