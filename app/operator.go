package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/agentos/agentos/store"
	"github.com/urfave/cli/v2"
)

// operatorCommands are the operator UX commands (up, validate, …).
func operatorCommands(build BuildInfo, stdout, stderr io.Writer) []*cli.Command {
	return nil
}

// BinarySHA256 hashes the running executable, for reports.
func BinarySHA256() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	f, err := os.Open(exe)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// CheckProd refuses a prod start with demo secrets or plain-text secrets
// in the env file.
func CheckProd(cfg Config, envFile map[string]string) error {
	if cfg.Mode != ModeProd {
		return nil
	}
	if bad := PlaintextSecretsInEnvFile(envFile); len(bad) > 0 {
		return fmt.Errorf("prod mode refuses plain-text secrets in %s: %s (inject them through the environment or an owner-only file)", EnvFileName, strings.Join(bad, ", "))
	}
	if _, err := os.Stat(cfg.Path(CredentialsFileName)); err == nil {
		return fmt.Errorf("prod mode refuses to start with demo credentials present (%s): remove them and use `agentos bootstrap`", cfg.Path(CredentialsFileName))
	}
	return nil
}

// auditVerify checks the audit chains in the data dir's store.
func auditVerify(ctx context.Context, cfg Config, tenantID string, out io.Writer) error {
	st, err := store.Open(cfg.Path("agentos.db"), store.Options{})
	if err != nil {
		return &exitError{1, err.Error()}
	}
	defer st.Close()
	ids := []string{tenantID}
	if tenantID == "" {
		ts, err := st.ListTenants(ctx)
		if err != nil {
			return &exitError{1, err.Error()}
		}
		ids = ids[:0]
		for _, t := range ts {
			ids = append(ids, t.TenantID)
		}
	}
	failed := 0
	for _, id := range ids {
		n, err := st.VerifyAudit(ctx, id)
		if err != nil {
			failed++
			fmt.Fprintf(out, "FAIL %s: %v (after %d good records)\n", id, err, n)
			continue
		}
		fmt.Fprintf(out, "ok   %s: %d records, chain intact\n", id, n)
	}
	if failed > 0 {
		return &exitError{1, fmt.Sprintf("%d audit chain(s) failed verification", failed)}
	}
	return nil
}
