package edge

import (
	"context"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentos/agentos/core"
)

// credStore is a TokenPort and TenantPort over two maps that counts reads;
// hook, when set, runs inside TokenBySecretHash after the read (to let a
// test write between a cache miss's read and its fill).
type credStore struct {
	core.TokenPort
	core.TenantPort
	mu          sync.Mutex
	tokens      map[string]core.Token
	tenants     map[string]core.Tenant
	tokenReads  atomic.Int64
	tenantReads atomic.Int64
	hook        func()
}

func (s *credStore) TokenBySecretHash(_ context.Context, hash string) (core.Token, error) {
	s.tokenReads.Add(1)
	s.mu.Lock()
	tok, ok := s.tokens[hash]
	s.mu.Unlock()
	if s.hook != nil {
		s.hook()
	}
	if !ok {
		return core.Token{}, core.Errorf(core.CodeUnauthorized, "unknown")
	}
	return tok, nil
}

func (s *credStore) TouchToken(context.Context, string, string, time.Time) error { return nil }

func (s *credStore) GetTenant(_ context.Context, id string) (core.Tenant, error) {
	s.tenantReads.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tenants[id]
	if !ok {
		return t, core.NotFound("tenant", id)
	}
	return t, nil
}

func newCredFixture(t *testing.T) (*Authenticator, *credStore, *core.LocalChanges) {
	t.Helper()
	now := time.Now()
	st := &credStore{
		tokens: map[string]core.Token{core.HashSecret("secret-1"): {TokenID: "tok_1", TenantID: "tnt_a", PrincipalID: "usr_a",
			Scopes: []string{"agents:read"}, Roles: []string{core.RoleTenantUser}, LastUsedAt: &now}},
		tenants: map[string]core.Tenant{"tnt_a": {TenantID: "tnt_a", Status: core.TenantActive}},
	}
	a, err := NewAuthenticator(AuthConfig{}, make([]byte, 32), st, st)
	if err != nil {
		t.Fatal(err)
	}
	feed := core.NewLocalChanges()
	t.Cleanup(a.Watch(feed, 0))
	return a, st, feed
}

func authWith(a *Authenticator, secret string) error {
	r := httptest.NewRequest("GET", "/v1/agents", nil)
	r.Header.Set("Authorization", "Bearer "+secret)
	_, err := a.Authenticate(r)
	return err
}

// Repeated requests with one key read the store once.
func TestAuthCache_RepeatedKeyReadsStoreOnce(t *testing.T) {
	a, st, _ := newCredFixture(t)
	for i := 0; i < 50; i++ {
		if err := authWith(a, "secret-1"); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if n, m := st.tokenReads.Load(), st.tenantReads.Load(); n != 1 || m != 1 {
		t.Fatalf("store reads for 50 requests: %d token, %d tenant; want 1 and 1", n, m)
	}
	// Unknown keys are never cached: each one is read (and refused).
	for i := 0; i < 3; i++ {
		if err := authWith(a, "nope"); core.ErrorCode(err) != core.CodeUnauthorized {
			t.Fatalf("unknown key: %v", err)
		}
	}
	if n := st.tokenReads.Load(); n != 4 {
		t.Fatalf("token reads after 3 unknown keys: %d, want 4", n)
	}
}

// A revocation published on the feed refuses the next request, and so
// does a disabled tenant, although both were cached.
func TestAuthCache_ChangeRefusesNextRequest(t *testing.T) {
	a, st, feed := newCredFixture(t)
	if err := authWith(a, "secret-1"); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	st.mu.Lock()
	tok := st.tokens[core.HashSecret("secret-1")]
	tok.RevokedAt = &revoked
	st.tokens[core.HashSecret("secret-1")] = tok
	st.mu.Unlock()
	if err := authWith(a, "secret-1"); err != nil {
		t.Fatalf("before the change is published the cached key still works (the store write path always publishes): %v", err)
	}
	feed.Publish(context.Background(), core.Change{Kind: core.ChangeToken, TenantID: "tnt_a", ID: "tok_1"})
	if err := authWith(a, "secret-1"); core.ErrorCode(err) != core.CodeUnauthorized {
		t.Fatalf("revoked key after the change: %v, want unauthorized", err)
	}

	st.mu.Lock()
	st.tokens[core.HashSecret("secret-2")] = core.Token{TokenID: "tok_2", TenantID: "tnt_a", PrincipalID: "usr_b", Roles: []string{core.RoleTenantUser}}
	st.mu.Unlock()
	if err := authWith(a, "secret-2"); err != nil {
		t.Fatal(err)
	}
	st.mu.Lock()
	st.tenants["tnt_a"] = core.Tenant{TenantID: "tnt_a", Status: core.TenantDisabled}
	st.mu.Unlock()
	feed.Publish(context.Background(), core.Change{Kind: core.ChangeTenant, TenantID: "tnt_a"})
	if err := authWith(a, "secret-2"); core.ErrorCode(err) != core.CodeForbidden {
		t.Fatalf("key of a disabled tenant: %v, want forbidden", err)
	}
}

// A miss whose store read happened before a revocation, and whose fill
// would land after it, is not kept: the next request reads again.
func TestAuthCache_FillRacingARevocationIsDropped(t *testing.T) {
	a, st, feed := newCredFixture(t)
	revoked := time.Now()
	st.hook = func() {
		// The read above saw the active token; now the revocation commits
		// and is published before the reader stores what it read.
		st.hook = nil
		st.mu.Lock()
		tok := st.tokens[core.HashSecret("secret-1")]
		tok.RevokedAt = &revoked
		st.tokens[core.HashSecret("secret-1")] = tok
		st.mu.Unlock()
		feed.Publish(context.Background(), core.Change{Kind: core.ChangeToken, TenantID: "tnt_a", ID: "tok_1"})
	}
	if err := authWith(a, "secret-1"); err != nil {
		t.Fatalf("the racing request itself read the active token: %v", err)
	}
	if err := authWith(a, "secret-1"); core.ErrorCode(err) != core.CodeUnauthorized {
		t.Fatalf("request after the revocation: %v, want unauthorized (stale fill kept)", err)
	}
}

// Entries expire after the TTL even without a change notice.
func TestAuthCache_EntriesExpire(t *testing.T) {
	a, st, _ := newCredFixture(t)
	clock := time.Now()
	a.cache.now = func() time.Time { return clock }
	_ = authWith(a, "secret-1")
	_ = authWith(a, "secret-1")
	clock = clock.Add(DefaultCredentialCacheTTL + time.Millisecond)
	_ = authWith(a, "secret-1")
	if n := st.tokenReads.Load(); n != 2 {
		t.Fatalf("token reads across one expiry: %d, want 2", n)
	}
}

// ChangeAll (a cluster node's listener missed notices) drops every entry.
func TestAuthCache_ChangeAllDropsEverything(t *testing.T) {
	a, st, feed := newCredFixture(t)
	_ = authWith(a, "secret-1")
	feed.Publish(context.Background(), core.Change{Kind: core.ChangeAll})
	_ = authWith(a, "secret-1")
	if n, m := st.tokenReads.Load(), st.tenantReads.Load(); n != 2 || m != 2 {
		t.Fatalf("reads after ChangeAll: %d token, %d tenant; want 2 and 2", n, m)
	}
}
