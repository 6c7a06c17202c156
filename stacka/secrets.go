package stacka

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/agentos/agentos/core"
)

// checkSecretRef is the validation of config.secret_ref shared by the
// tool kinds that take one (http, a2a): absent, or secret:<name>.
func checkSecretRef(td core.ToolDescriptor) error {
	v, ok := td.Config["secret_ref"]
	if !ok {
		return nil
	}
	ref, _ := v.(string)
	if ref == "" {
		return core.Invalid("tool.config.secret_ref", "secret_ref must be a string secret:<name>")
	}
	if _, ok := core.ParseSecretRef(ref); !ok {
		return badSecretRef(ref)
	}
	return nil
}

// tenantSecret resolves a tool's secret_ref for tenantID. A tenant may only
// name its own secrets, secret:<name>: the tenant's secret store first
// (set with PUT /v1/admin/tenants/{tenant_id}/secrets/{name}), then
// <TenantSecretsDir>/<tenant_id>/<name> when the operator set that
// directory. Any other form (a host file:, an env: variable) is refused,
// also for a tool stored before the rule existed: invalid_request naming
// tool.config.secret_ref, as is a name neither place has.
func (s *Service) tenantSecret(ctx context.Context, tenantID, ref string) ([]byte, error) {
	if ref == "" {
		return nil, nil
	}
	name, ok := core.ParseSecretRef(ref)
	if !ok {
		return nil, badSecretRef(ref)
	}
	if s.secrets != nil {
		v, err := s.secrets.SecretValue(ctx, tenantID, name)
		if err == nil {
			return v, nil
		}
		if !core.IsCode(err, core.CodeNotFound) {
			return nil, fmt.Errorf("read secret %s: %w", name, err)
		}
	}
	if dir := s.cfg.TenantSecretsDir; dir != "" {
		v, err := readSecretsDir(dir, tenantID, name)
		if err == nil {
			return v, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, core.Errorf(core.CodeInvalidRequest, "secret %s cannot be read from the tenant secrets directory", name).
				With("field", "tool.config.secret_ref")
		}
	}
	return nil, core.Errorf(core.CodeInvalidRequest, "tenant %s has no secret %s: store it with PUT /v1/admin/tenants/%s/secrets/%s", tenantID, name, tenantID, name).
		With("field", "tool.config.secret_ref")
}

// readSecretsDir reads <dir>/<tenant_id>/<name> through an os.Root, so
// neither a crafted name nor a symlink reaches outside dir.
func readSecretsDir(dir, tenantID, name string) ([]byte, error) {
	rel := tenantID + "/" + name
	if !filepath.IsLocal(rel) || !core.ValidSecretName(name) || strings.ContainsAny(tenantID, `/\`) {
		return nil, fmt.Errorf("secret path %q leaves the directory", rel)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	b, err := root.ReadFile(rel)
	if err != nil {
		return nil, err
	}
	return bytes.TrimSpace(b), nil
}

func badSecretRef(ref string) error {
	kind, _, _ := strings.Cut(ref, ":")
	return core.Invalid("tool.config.secret_ref",
		"secret_ref %q is refused: a tool may only name its tenant's own secrets as secret:<name> (not %s:), stored with PUT /v1/admin/tenants/{tenant_id}/secrets/{name}", ref, kind)
}
