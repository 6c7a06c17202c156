package app_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentos/agentos/app"
	"github.com/agentos/agentos/internal/testkit"
	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	"github.com/rs/zerolog"
)

func TestNode_HealthOnThreePorts(t *testing.T) {
	n := MustStartNode(t)
	for _, stack := range []string{app.StackA, app.StackB, app.StackFed} {
		for _, path := range []string{"/healthz", "/readyz"} {
			r := do(t, "GET", n.URL(stack)+path, "", nil)
			expectStatus(t, r, 200, stack+path)
			if got := r.JSON(t)["status"]; got != "ok" {
				t.Fatalf("%s%s status %v", stack, path, got)
			}
			if r.Header.Get("X-Correlation-Id") == "" || r.Header.Get("X-Request-Id") == "" {
				t.Fatalf("%s%s: missing correlation or request id headers", stack, path)
			}
		}
		if !testkit.Scrape(t, nil, n.URL(stack)+"/metrics").Has("agentos_http_requests_total") {
			t.Fatalf("%s/metrics lacks agentos_http_requests_total", stack)
		}
	}
	raw, err := os.ReadFile(filepath.Join(n.Config.DataDir, "node.json"))
	if err != nil || !strings.Contains(string(raw), n.URL(app.StackA)) {
		t.Fatalf("node.json missing or without stack_a_url: %v %s", err, raw)
	}
	fi, err := os.Stat(filepath.Join(n.Config.DataDir, "credentials.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credentials.json must be 0600: %v %v", err, fi.Mode())
	}
}

func TestNode_CorrelationIDIsKept(t *testing.T) {
	n := MustStartNode(t)
	r := do(t, "GET", n.URL(app.StackA)+"/v1/admin/tenants", "", nil, "X-Correlation-Id", "corr_mine")
	expectStatus(t, r, 401, "no credential")
	if r.Header.Get("X-Correlation-Id") != "corr_mine" || r.JSON(t)["correlation_id"] != "corr_mine" {
		t.Fatalf("correlation id not kept: %v %s", r.Header, r.Body)
	}
}

func TestNode_AuthAndTenancy(t *testing.T) {
	n := MustStartNode(t)
	a := n.URL(app.StackA)
	admin, tadmin := n.creds.PlatformAdmin.APIKey, n.creds.TenantAdmin.APIKey

	expectStatus(t, do(t, "GET", a+"/v1/admin/tenants", "", nil), 401, "no credential")
	expectStatus(t, do(t, "GET", a+"/v1/admin/tenants", "aos_not_a_key", nil), 401, "unknown key")

	create := map[string]any{"tenant_create": map[string]any{"tenant_id": "tnt_other", "name": "Other", "plan_tier": "pro"}}
	r := do(t, "POST", a+"/v1/admin/tenants", admin, create)
	expectStatus(t, r, 201, "create tenant")
	if tn := r.JSON(t)["tenant"].(map[string]any); tn["tenant_id"] != "tnt_other" || tn["status"] != "active" {
		t.Fatalf("created tenant: %v", tn)
	}
	r = do(t, "POST", a+"/v1/admin/tenants", admin, create)
	expectStatus(t, r, 409, "duplicate tenant")
	if r.ErrorCode(t) != "conflict" {
		t.Fatalf("duplicate: code %s", r.ErrorCode(t))
	}

	// A tenant admin sees its own tenant, not another's, and cannot act as it.
	expectStatus(t, do(t, "GET", a+"/v1/admin/tenants/tnt_demo", tadmin, nil), 200, "own tenant")
	r = do(t, "GET", a+"/v1/admin/tenants/tnt_other", tadmin, nil)
	expectStatus(t, r, 404, "other tenant")
	r = do(t, "GET", a+"/v1/admin/tenants/tnt_other/tokens", tadmin, nil)
	expectStatus(t, r, 404, "other tenant's tokens")
	r = do(t, "GET", a+"/v1/admin/tenants", tadmin, nil, "X-Tenant-Id", "tnt_other")
	expectStatus(t, r, 403, "act as other tenant")
	if r.ErrorCode(t) != "forbidden" {
		t.Fatalf("act-as: code %s", r.ErrorCode(t))
	}
	// A tenant admin cannot create tenants or grant platform_admin.
	expectStatus(t, do(t, "POST", a+"/v1/admin/tenants", tadmin, map[string]any{"tenant_create": map[string]any{"tenant_id": "tnt_mine", "name": "x"}}), 403, "tenant admin creates tenant")
	r = do(t, "POST", a+"/v1/admin/tenants/tnt_demo/tokens", tadmin, map[string]any{"token_create": map[string]any{
		"principal_id": "usr_eve", "principal_type": "user", "scopes": []string{}, "roles": []string{"platform_admin"}}})
	expectStatus(t, r, 403, "escalate to platform_admin")

	// Issue, rotate, revoke.
	r = do(t, "POST", a+"/v1/admin/tenants/tnt_other/tokens", admin, map[string]any{"token_create": map[string]any{
		"principal_id": "usr_bob", "principal_type": "user", "scopes": []string{"audit:read"}, "roles": []string{"tenant_admin"}}})
	expectStatus(t, r, 201, "issue token")
	body := r.JSON(t)
	secret := body["secret"].(string)
	tokenID := body["token"].(map[string]any)["token_id"].(string)
	expectStatus(t, do(t, "GET", a+"/v1/audit", secret, nil), 200, "new key works")
	expectStatus(t, do(t, "GET", a+"/v1/admin/tenants/tnt_demo", secret, nil), 404, "bob reads demo")

	r = do(t, "POST", a+"/v1/admin/tenants/tnt_other/tokens/"+tokenID+":rotate", admin, nil)
	expectStatus(t, r, 200, "rotate")
	rotated := r.JSON(t)["secret"].(string)
	expectStatus(t, do(t, "GET", a+"/v1/audit", secret, nil), 401, "old secret after rotate")
	expectStatus(t, do(t, "GET", a+"/v1/audit", rotated, nil), 200, "new secret after rotate")

	r = do(t, "GET", a+"/v1/admin/tenants/tnt_other/tokens", admin, nil)
	expectStatus(t, r, 200, "list tokens")
	if strings.Contains(string(r.Body), rotated) || strings.Contains(string(r.Body), "secret_hash") {
		t.Fatalf("token list leaks secrets: %s", r.Body)
	}
	expectStatus(t, do(t, "DELETE", a+"/v1/admin/tenants/tnt_other/tokens/"+tokenID, admin, nil), 200, "revoke")
	expectStatus(t, do(t, "GET", a+"/v1/audit", rotated, nil), 401, "revoked key")

	// Disable the tenant: its (new) keys are refused with 403.
	r = do(t, "POST", a+"/v1/admin/tenants/tnt_other/tokens", admin, map[string]any{"token_create": map[string]any{
		"principal_id": "usr_carol", "principal_type": "user", "scopes": []string{"audit:read"}, "roles": []string{}}})
	expectStatus(t, r, 201, "issue token 2")
	carol := r.JSON(t)["secret"].(string)
	testkit.PatchTenant(t, a, admin, "tnt_other", map[string]any{"status": "disabled"})
	expectStatus(t, do(t, "GET", a+"/v1/audit", carol, nil), 403, "disabled tenant")
	testkit.PatchTenant(t, a, admin, "tnt_other", map[string]any{"status": "active"})
	expectStatus(t, do(t, "GET", a+"/v1/audit", carol, nil), 200, "enabled tenant")

	// Every change above is audited in the tenant's chain, and the chain verifies.
	r = do(t, "GET", a+"/v1/audit?tenant_id=tnt_other&limit=100", admin, nil)
	expectStatus(t, r, 200, "audit list")
	actions := map[string]bool{}
	for _, rec := range r.JSON(t)["records"].([]any) {
		actions[rec.(map[string]any)["action"].(string)] = true
	}
	for _, want := range []string{"tenant.create", "token.issue", "token.rotate", "token.revoke", "tenant.disable", "tenant.enable"} {
		if !actions[want] {
			t.Errorf("audit lacks %s: %v", want, actions)
		}
	}
	if n, err := n.Store().VerifyAudit(context.Background(), "tnt_other"); err != nil || n < 6 {
		t.Fatalf("verify chain: %d records, %v", n, err)
	}
}

func TestNode_JWT(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(pub)
	dir := t.TempDir()
	pemFile := testkit.WriteFile(t, filepath.Join(dir, "jwt.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600)
	n := MustStartNode(t, func(c *app.Config) { c.JWTPublicKeyFiles = []string{pemFile} })
	a := n.URL(app.StackA)
	claims := jwt.MapClaims{"sub": "usr_jwt", "tenant_id": "tnt_demo", "scope": "audit:read", "exp": time.Now().Add(time.Minute).Unix()}

	hs, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(n.Secret())
	expectStatus(t, do(t, "GET", a+"/v1/audit", hs, nil), 200, "HS256 with node secret")
	ed, _ := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims).SignedString(priv)
	expectStatus(t, do(t, "GET", a+"/v1/audit", ed, nil), 200, "EdDSA with configured key")

	wrong, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte("0123456789abcdef0123456789abcdef-wrong"))
	r := do(t, "GET", a+"/v1/audit", wrong, nil)
	expectStatus(t, r, 401, "HS256 wrong secret")
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	bad, _ := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims).SignedString(other)
	expectStatus(t, do(t, "GET", a+"/v1/audit", bad, nil), 401, "EdDSA wrong key")
	expired := jwt.MapClaims{"sub": "usr_jwt", "tenant_id": "tnt_demo", "scope": "audit:read", "exp": time.Now().Add(-time.Hour).Unix()}
	old, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, expired).SignedString(n.Secret())
	expectStatus(t, do(t, "GET", a+"/v1/audit", old, nil), 401, "expired")
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, claims).SignedString(jwt.UnsafeAllowNoneSignatureType)
	expectStatus(t, do(t, "GET", a+"/v1/audit", none, nil), 401, "alg none")
	noScope := jwt.MapClaims{"sub": "usr_jwt", "tenant_id": "tnt_demo", "exp": time.Now().Add(time.Minute).Unix()}
	ns, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, noScope).SignedString(n.Secret())
	expectStatus(t, do(t, "GET", a+"/v1/audit", ns, nil), 403, "missing scope")
}

func TestNode_FailsClosedOnMissingKeyFile(t *testing.T) {
	cfg := testConfig(t)
	cfg.JWTPublicKeyFiles = []string{filepath.Join(t.TempDir(), "absent.pem")}
	n := app.NewNode(cfg, app.BuildInfo{}, zerolog.Nop())
	err := n.Open(context.Background())
	if err == nil {
		n.Close()
		t.Fatal("node started with a missing JWT key file")
	}
	if !strings.Contains(err.Error(), "absent.pem") {
		t.Fatalf("error does not name the file: %v", err)
	}
}

func TestNode_AuthFailureLimit(t *testing.T) {
	n := MustStartNode(t, func(c *app.Config) { c.AuthFailuresPerMinute = 5 })
	a := n.URL(app.StackA)
	for i := 0; i < 5; i++ {
		expectStatus(t, do(t, "GET", a+"/v1/audit", "aos_guess", nil), 401, "guess")
	}
	r := do(t, "GET", a+"/v1/audit", "aos_guess", nil)
	expectStatus(t, r, 429, "guess after the limit")
	if r.Header.Get("Retry-After") == "" || r.ErrorCode(t) != "rate_limited" {
		t.Fatalf("429 without Retry-After or code: %v %s", r.Header, r.Body)
	}
	// Public paths stay reachable.
	expectStatus(t, do(t, "GET", a+"/healthz", "", nil), 200, "healthz while limited")
}

func TestNode_SeedIsIdempotent(t *testing.T) {
	n := MustStartNode(t)
	if _, err := n.Seed(context.Background()); err != nil {
		t.Fatal(err)
	}
	again, err := app.ReadCredentials(n.Config.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	if again != n.creds {
		t.Fatal("seeding again changed the keys")
	}
	r := do(t, "GET", n.URL(app.StackA)+"/v1/admin/tenants/tnt_demo/tokens", n.creds.PlatformAdmin.APIKey, nil)
	expectStatus(t, r, http.StatusOK, "list tokens")
	if got := strings.Count(string(r.Body), `"token_id"`); got != 2 {
		t.Fatalf("want 2 seeded tokens, got %d", got)
	}
}

func TestNode_JWKSAndES256(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}}
	raw, _ := json.Marshal(set)
	file := testkit.WriteFile(t, filepath.Join(t.TempDir(), "jwks.json"), raw, 0o600)
	n := MustStartNode(t, func(c *app.Config) {
		c.JWTJWKSFile = file
		c.JWTIssuer = "https://idp.example"
		c.JWTAudience = "agentos"
	})
	a := n.URL(app.StackA)
	mk := func(iss string, k *ecdsa.PrivateKey) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"sub": "usr_jwks", "tenant_id": "tnt_demo",
			"scopes": []string{"audit:read"}, "iss": iss, "aud": "agentos", "exp": time.Now().Add(time.Minute).Unix()})
		tok.Header["kid"] = "k1"
		s, _ := tok.SignedString(k)
		return s
	}
	expectStatus(t, do(t, "GET", a+"/v1/audit", mk("https://idp.example", key), nil), 200, "ES256 from JWKS")
	expectStatus(t, do(t, "GET", a+"/v1/audit", mk("https://evil.example", key), nil), 401, "wrong issuer")
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	expectStatus(t, do(t, "GET", a+"/v1/audit", mk("https://idp.example", other), nil), 401, "key not in JWKS")
}

func TestNode_LastUsedAtIsRecorded(t *testing.T) {
	n := MustStartNode(t)
	a := n.URL(app.StackA)
	admin := n.creds.PlatformAdmin.APIKey
	r := do(t, "POST", a+"/v1/admin/tenants/tnt_demo/tokens", admin, map[string]any{"token_create": map[string]any{
		"principal_id": "usr_dora", "principal_type": "user", "scopes": []string{"audit:read"}, "roles": []string{}}})
	expectStatus(t, r, 201, "issue")
	secret := r.JSON(t)["secret"].(string)
	tokenID := r.JSON(t)["token"].(map[string]any)["token_id"].(string)
	if lu := r.JSON(t)["token"].(map[string]any)["last_used_at"]; lu != nil {
		t.Fatalf("fresh token already used: %v", lu)
	}
	expectStatus(t, do(t, "GET", a+"/v1/audit", secret, nil), 200, "use the key")
	testkit.WaitFor(t, "last_used_at recorded after a request", 5*time.Second, func() bool {
		tok, err := n.Store().GetToken(context.Background(), "tnt_demo", tokenID)
		return err == nil && tok.LastUsedAt != nil
	})
}

func TestNode_ProdRefusesLiveDemoKeys(t *testing.T) {
	cfg := testConfig(t)
	demo := app.NewNode(cfg, app.BuildInfo{}, zerolog.Nop())
	if err := demo.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	demo.Close()
	os.Remove(filepath.Join(cfg.DataDir, "credentials.json"))
	cfg.Mode = app.ModeProd
	prod := app.NewNode(cfg, app.BuildInfo{}, zerolog.Nop())
	err := prod.Open(context.Background())
	if err == nil {
		prod.Close()
		t.Fatal("prod started with the demo keys still active")
	}
	if !strings.Contains(err.Error(), "demo keys are active") {
		t.Fatalf("error: %v", err)
	}
}
