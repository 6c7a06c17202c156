package app

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strings"
)

// AllowPublicAdminEnv, set to 1/true (or `up --allow-public-admin`), lets a
// prod node bind Stack A, which serves the admin API, to a non-loopback
// address.
const AllowPublicAdminEnv = "AGENTOS_ALLOW_PUBLIC_ADMIN"

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
	if !allowPublicAdmin(envFile) {
		if host, _, err := net.SplitHostPort(cfg.StackAAddr); err == nil && !loopbackHost(host) {
			return fmt.Errorf("prod mode refuses an open admin surface: Stack A (admin API) would listen on %s; bind it to 127.0.0.1 behind a proxy, or pass --allow-public-admin (%s=1) to accept it", cfg.StackAAddr, AllowPublicAdminEnv)
		}
	}
	if bad := plaintextProviderKeys(cfg.ProvidersFile); len(bad) > 0 {
		return fmt.Errorf("prod mode refuses provider keys in plain text in %s (%s): use api_key_env", cfg.ProvidersFile, strings.Join(bad, ", "))
	}
	if bad := exposedKeyFiles(cfg.ProvidersFile); len(bad) > 0 {
		return fmt.Errorf("prod mode refuses provider key files readable by others: %s (chmod 600, owned by the service user)", strings.Join(bad, ", "))
	}
	return nil
}

func allowPublicAdmin(envFile map[string]string) bool {
	v, ok := os.LookupEnv(AllowPublicAdminEnv)
	if !ok {
		v = envFile[AllowPublicAdminEnv]
	}
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "true", "yes":
		return true
	}
	return false
}

// loopbackHost reports a host that only local clients reach. An empty
// host (":8080") listens everywhere.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// providerEntries reads the providers of a providers file as raw objects;
// nil when there is no file or it does not parse (the node's own startup
// reports those).
func providerEntries(path string) []map[string]any {
	if path == "" {
		return nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var pf struct {
		Providers []map[string]any `json:"providers"`
	}
	if json.Unmarshal(raw, &pf) != nil {
		return nil
	}
	return pf.Providers
}

// plaintextProviderKeys names the providers of a providers file that carry
// a literal api_key instead of api_key_env.
func plaintextProviderKeys(path string) []string {
	var bad []string
	for i, p := range providerEntries(path) {
		for _, k := range []string{"api_key", "apiKey", "key", "token"} {
			if v, ok := p[k].(string); ok && v != "" {
				bad = append(bad, fmt.Sprintf("providers[%d].%s", i, k))
			}
		}
	}
	return bad
}

// exposedKeyFiles names the api_key_file entries of a providers file that
// group or others may read.
func exposedKeyFiles(path string) []string {
	var bad []string
	for i, p := range providerEntries(path) {
		file, _ := p["api_key_file"].(string)
		if file == "" {
			continue
		}
		if fi, err := os.Stat(file); err == nil && fi.Mode().Perm()&0o077 != 0 {
			bad = append(bad, fmt.Sprintf("providers[%d].api_key_file %s (mode %04o)", i, file, fi.Mode().Perm()))
		}
	}
	return bad
}
