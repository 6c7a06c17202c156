package edge

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/agentos/agentos/core"
	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// PeerAuthenticator authenticates node-to-node calls; ok is false when the
// request carries no peer assertion.
type PeerAuthenticator func(r *http.Request) (a core.Auth, ok bool, err error)

// Authenticator turns a request's credential into a core.Auth (§1.4).
type Authenticator struct {
	tokens   core.TokenPort
	tenants  core.TenantPort
	hsSecret []byte
	pubKeys  []crypto.PublicKey
	jwks     *jose.JSONWebKeySet
	issuer   string
	audience string
	region   string
	// touched remembers when each token's last_used_at was last written,
	// so a busy key costs one write a minute, off the request path.
	touched sync.Map // token_id → time.Time
	// cache, when on (Watch), keeps keys and tenants between requests.
	cache *credentialCache
}

// touchEvery is how stale last_used_at may get.
const touchEvery = time.Minute

// touch records the token's use in the background, at most once a
// minute per token; it is best effort (a failed write only leaves
// last_used_at a little older).
func (a *Authenticator) touch(tok core.Token, now time.Time) {
	if tok.LastUsedAt != nil && now.Sub(*tok.LastUsedAt) < touchEvery {
		return
	}
	if last, ok := a.touched.Load(tok.TokenID); ok && now.Sub(last.(time.Time)) < touchEvery {
		return
	}
	a.touched.Store(tok.TokenID, now)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = a.tokens.TouchToken(ctx, tok.TenantID, tok.TokenID, now)
	}()
}

// AuthConfig is what the Authenticator needs of the node's configuration.
type AuthConfig struct {
	// JWTIssuer and JWTAudience, when set, are required of every JWT.
	JWTIssuer   string
	JWTAudience string
	// JWTPublicKeyFiles (PEM keys or certificates) and JWTJWKSFile verify
	// RS256/ES256/EdDSA JWTs; HS256 ones are verified with the node secret.
	JWTPublicKeyFiles []string
	JWTJWKSFile       string
	// Region fills the default policy context of every principal.
	Region string
}

// NewAuthenticator loads the JWT verification keys. A configured key file
// that is missing or unreadable is an error: auth fails closed.
func NewAuthenticator(cfg AuthConfig, secret []byte, tokens core.TokenPort, tenants core.TenantPort) (*Authenticator, error) {
	if len(secret) < 32 {
		return nil, fmt.Errorf("node secret: shorter than 32 bytes")
	}
	a := &Authenticator{tokens: tokens, tenants: tenants, hsSecret: secret, issuer: cfg.JWTIssuer, audience: cfg.JWTAudience, region: cfg.Region}
	for _, f := range cfg.JWTPublicKeyFiles {
		k, err := readPublicKeyPEM(f)
		if err != nil {
			return nil, fmt.Errorf("jwt public key %s: %w", f, err)
		}
		a.pubKeys = append(a.pubKeys, k)
	}
	if cfg.JWTJWKSFile != "" {
		raw, err := os.ReadFile(cfg.JWTJWKSFile)
		if err != nil {
			return nil, fmt.Errorf("jwt jwks file: %w", err)
		}
		var set jose.JSONWebKeySet
		if err := json.Unmarshal(raw, &set); err != nil {
			return nil, fmt.Errorf("jwt jwks file %s: %w", cfg.JWTJWKSFile, err)
		}
		if len(set.Keys) == 0 {
			return nil, fmt.Errorf("jwt jwks file %s: no keys", cfg.JWTJWKSFile)
		}
		for _, k := range set.Keys {
			if !k.IsPublic() {
				return nil, fmt.Errorf("jwt jwks file %s: key %q is not a public key", cfg.JWTJWKSFile, k.KeyID)
			}
		}
		a.jwks = &set
	}
	return a, nil
}

func readPublicKeyPEM(path string) (crypto.PublicKey, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		return nil, fmt.Errorf("no PEM block")
	}
	if block.Type == "CERTIFICATE" {
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		return cert.PublicKey, nil
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse public key: %w", err)
	}
	return k, nil
}

// credential extracts the bearer or X-API-Key value.
func credential(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
			return strings.TrimSpace(h[7:])
		}
		return ""
	}
	return strings.TrimSpace(r.Header.Get("X-API-Key"))
}

func looksLikeJWT(s string) bool { return strings.Count(s, ".") == 2 && strings.HasPrefix(s, "ey") }

// Authenticate resolves the credential, then applies the X-Tenant-Id rule
// and the tenant's status. Errors are unauthorized, forbidden or not_found.
func (a *Authenticator) Authenticate(r *http.Request) (core.Auth, error) {
	cred := credential(r)
	if cred == "" {
		return core.Auth{}, core.Errorf(core.CodeUnauthorized, "missing credential: send Authorization: Bearer <key> or X-API-Key")
	}
	var au core.Auth
	var err error
	if looksLikeJWT(cred) {
		au, err = a.fromJWT(cred)
	} else {
		au, err = a.fromAPIKey(r.Context(), cred)
	}
	if err != nil {
		return core.Auth{}, err
	}
	au.Session = &core.Session{IP: clientIP(r), UserAgent: r.UserAgent()}
	return a.scopeTenant(r.Context(), au, r.Header.Get("X-Tenant-Id"))
}

func (a *Authenticator) scopeTenant(ctx context.Context, au core.Auth, want string) (core.Auth, error) {
	if want != "" && want != au.TenantID {
		if !au.CanActAs() {
			return core.Auth{}, core.Errorf(core.CodeForbidden, "X-Tenant-Id names another tenant; only platform_admin or tenants:act_as may act as one").With("tenant_id", want)
		}
		au.TenantID = want
	}
	t, err := a.getTenant(ctx, au.TenantID)
	if err != nil {
		if core.IsCode(err, core.CodeNotFound) {
			if want != "" {
				return core.Auth{}, core.NotFound("tenant", want)
			}
			return core.Auth{}, core.Errorf(core.CodeUnauthorized, "credential's tenant no longer exists")
		}
		return core.Auth{}, err
	}
	if t.Status == core.TenantDisabled && !au.IsPlatformAdmin() {
		return core.Auth{}, core.Errorf(core.CodeForbidden, "tenant %s is disabled", t.TenantID).With("tenant_id", t.TenantID)
	}
	return au, nil
}

func (a *Authenticator) fromAPIKey(ctx context.Context, secret string) (core.Auth, error) {
	tok, err := a.tokenByHash(ctx, core.HashSecret(secret))
	if err != nil {
		if core.IsCode(err, core.CodeUnauthorized) {
			return core.Auth{}, core.Errorf(core.CodeUnauthorized, "unknown or revoked API key")
		}
		return core.Auth{}, err
	}
	now := time.Now()
	if !tok.Active(now) {
		return core.Auth{}, core.Errorf(core.CodeUnauthorized, "API key revoked or expired")
	}
	a.touch(tok, now)
	ptype := tok.PrincipalType
	if ptype == "" {
		ptype = "user"
	}
	return core.Auth{
		TenantID:      tok.TenantID,
		Principal:     core.Principal{PrincipalID: tok.PrincipalID, PrincipalType: ptype, DisplayName: tok.DisplayName},
		Scopes:        append([]string{}, tok.Scopes...),
		Roles:         append([]string{}, tok.Roles...),
		PolicyContext: core.DefaultPolicyContext(a.region),
		TokenID:       tok.TokenID,
	}, nil
}

// jwtClaims are the claims of §1.4.
type jwtClaims struct {
	TenantID      string              `json:"tenant_id"`
	Scope         string              `json:"scope"`
	Scopes        []string            `json:"scopes"`
	Roles         []string            `json:"roles"`
	PrincipalType string              `json:"principal_type"`
	Name          string              `json:"name"`
	PolicyContext *core.PolicyContext `json:"policy_context"`
	jwt.RegisteredClaims
}

func (a *Authenticator) keyFor(t *jwt.Token) (any, error) {
	switch t.Method.Alg() {
	case "HS256":
		return a.hsSecret, nil
	case "RS256", "ES256", "EdDSA":
	default:
		return nil, fmt.Errorf("alg %s not accepted", t.Method.Alg())
	}
	var keys []jwt.VerificationKey
	kid, _ := t.Header["kid"].(string)
	if a.jwks != nil {
		for _, k := range a.jwks.Keys {
			if kid == "" || k.KeyID == kid {
				keys = append(keys, k.Key)
			}
		}
	}
	for _, k := range a.pubKeys {
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("no public key configured for %s", t.Method.Alg())
	}
	return jwt.VerificationKeySet{Keys: keys}, nil
}

func (a *Authenticator) fromJWT(raw string) (core.Auth, error) {
	opts := []jwt.ParserOption{jwt.WithValidMethods([]string{"HS256", "RS256", "ES256", "EdDSA"}), jwt.WithExpirationRequired(), jwt.WithLeeway(30 * time.Second)}
	if a.issuer != "" {
		opts = append(opts, jwt.WithIssuer(a.issuer))
	}
	if a.audience != "" {
		opts = append(opts, jwt.WithAudience(a.audience))
	}
	var c jwtClaims
	if _, err := jwt.ParseWithClaims(raw, &c, a.keyFor, opts...); err != nil {
		return core.Auth{}, core.Errorf(core.CodeUnauthorized, "invalid JWT: %v", err)
	}
	if c.Subject == "" || c.TenantID == "" {
		return core.Auth{}, core.Errorf(core.CodeUnauthorized, "invalid JWT: sub and tenant_id are required")
	}
	scopes := c.Scopes
	if len(scopes) == 0 && c.Scope != "" {
		scopes = strings.Fields(c.Scope)
	}
	if scopes == nil {
		scopes = []string{}
	}
	ptype := c.PrincipalType
	if ptype == "" {
		ptype = "user"
		if strings.HasPrefix(c.Subject, core.PrefixService+"_") {
			ptype = "service"
		}
	}
	pc := core.DefaultPolicyContext(a.region)
	if c.PolicyContext != nil && c.PolicyContext.DataClassification != "" {
		pc = *c.PolicyContext
	}
	return core.Auth{
		TenantID:      c.TenantID,
		Principal:     core.Principal{PrincipalID: c.Subject, PrincipalType: ptype, DisplayName: c.Name},
		Scopes:        scopes,
		Roles:         c.Roles,
		PolicyContext: pc,
	}, nil
}

// MintServiceJWT signs an HS256 JWT with the node secret, used by Stack A
// to call a remote Stack B that shares the secret.
func MintServiceJWT(secret []byte, tenantID, subject string, scopes, roles []string, ttl time.Duration) (string, error) {
	now := time.Now()
	c := jwtClaims{TenantID: tenantID, Scopes: scopes, Roles: roles, PrincipalType: "service",
		RegisteredClaims: jwt.RegisteredClaims{Subject: subject, IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(ttl))}}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
}

// FailureLimiter allows each client IP a budget of unauthenticated or
// failed-auth requests per minute, so keys cannot be brute-forced.
type FailureLimiter struct {
	mu       sync.Mutex
	perMin   int
	limiters map[string]*ipLimiter
}

type ipLimiter struct {
	lim  *rate.Limiter
	seen time.Time
}

// NewFailureLimiter allows each address perMinute failures a minute.
func NewFailureLimiter(perMinute int) *FailureLimiter {
	return &FailureLimiter{perMin: perMinute, limiters: map[string]*ipLimiter{}}
}

func (f *FailureLimiter) get(ip string) *rate.Limiter {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	l, ok := f.limiters[ip]
	if !ok {
		if len(f.limiters) > 10000 {
			for k, v := range f.limiters {
				if now.Sub(v.seen) > 2*time.Minute {
					delete(f.limiters, k)
				}
			}
		}
		l = &ipLimiter{lim: rate.NewLimiter(rate.Limit(float64(f.perMin)/60), f.perMin)}
		f.limiters[ip] = l
	}
	l.seen = now
	return l.lim
}

// blocked reports whether ip has no failures left, and the wait in seconds.
func (f *FailureLimiter) blocked(ip string) (bool, int) {
	lim := f.get(ip)
	if lim.Tokens() >= 1 {
		return false, 0
	}
	wait := int(time.Duration(float64(time.Second)*60/float64(f.perMin)).Seconds()) + 1
	return true, wait
}

// fail spends one failure of ip.
func (f *FailureLimiter) fail(ip string) { f.get(ip).Allow() }
