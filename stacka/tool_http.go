package stacka

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/agentos/agentos/core"
)

// KindHTTP is the kind of webhook tools (§3.5): POST url, HMAC-signed.
const KindHTTP = "http"

func init() { registerToolKind(KindHTTP, httpKind{}) }

// httpKind calls a webhook: POST <url> with the call as JSON, signed with
// the secret of config.secret_ref; it answers {"output"} or an error object.
type httpKind struct{}

func (httpKind) validate(td *core.ToolDescriptor) error {
	if !httpURL(cfgString(*td, "url")) {
		return core.Invalid("tool.config.url", "an http tool needs config.url, an absolute http(s) URL")
	}
	return checkSecretRef(*td)
}

func (httpKind) invoke(ctx context.Context, s *Service, c toolCall) (toolResult, error) {
	out, err := s.callWebhook(ctx, c.Run, c.Tool, c.CallID, c.Input)
	return toolResult{Output: out}, err
}

// toolSecret resolves the secret_ref of a tool called by run r (only the
// run's tenant's own secrets, see tenantSecret) and audits the read (never
// the value); why says what the secret is for.
func (s *Service) toolSecret(ctx context.Context, r *core.RunRecord, td core.ToolDescriptor, callID, ref, why string) ([]byte, error) {
	secret, err := s.tenantSecret(ctx, r.TenantID, ref)
	if err != nil || ref == "" {
		return secret, err
	}
	rec := core.SecretReadAudit(r.TenantID, r.Auth.Principal.PrincipalID, ref, why+" of "+td.ToolID)
	rec.Details["run_id"], rec.Details["tool_call_id"] = r.RunID, callID
	if _, err := s.audit.AppendAudit(ctx, rec); err != nil {
		return nil, fmt.Errorf("audit secret read: %w", err)
	}
	return secret, nil
}

// Sign returns the X-AgentOS-Signature value of body: sha256=<hex HMAC>.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func (s *Service) callWebhook(ctx context.Context, r *core.RunRecord, td core.ToolDescriptor, callID string, input map[string]any) (map[string]any, error) {
	body, err := json.Marshal(map[string]any{"tool_call_id": callID, "tool_id": td.ToolID, "input": input,
		"tenant_id": r.TenantID, "run_id": r.RunID})
	if err != nil {
		return nil, fmt.Errorf("encode webhook body: %w", err)
	}
	secret, err := s.toolSecret(ctx, r, td, callID, cfgString(td, "secret_ref"), "webhook signature")
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cfgString(td, "url"), bytes.NewReader(body))
	if err != nil {
		return nil, core.Errorf(core.CodeInvalidRequest, "tool %s has a bad url", td.ToolID)
	}
	req.Header.Set("Content-Type", "application/json")
	if tp := core.Traceparent(ctx); tp != "" {
		req.Header.Set("traceparent", tp)
	}
	if cid := core.CorrelationID(ctx); cid != "" {
		req.Header.Set("X-Correlation-Id", cid)
	}
	if secret != nil {
		req.Header.Set("X-AgentOS-Signature", Sign(secret, body))
	}
	resp, err := s.egress.Do(req)
	if err != nil {
		return nil, toolError(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, toolError(err)
	}
	var ans struct {
		Output map[string]any  `json:"output"`
		Error  *core.ErrorBody `json:"error"`
	}
	_ = json.Unmarshal(raw, &ans)
	if ans.Error != nil && ans.Error.Code != "" {
		e := core.Errorf(ans.Error.Code, "%s", ans.Error.Message)
		e.Details = ans.Error.Details
		return nil, e
	}
	if resp.StatusCode/100 != 2 {
		code := core.CodeForStatus(resp.StatusCode)
		if resp.StatusCode >= 500 && code == core.CodeInternal {
			code = core.CodeDependencyUnavailable
		}
		return nil, core.Errorf(code, "tool %s answered HTTP %d", td.ToolID, resp.StatusCode)
	}
	if ans.Output == nil {
		return nil, core.Errorf(core.CodeDependencyUnavailable, "tool %s answered without an output object", td.ToolID)
	}
	return ans.Output, nil
}
