package store

import (
	"context"
	"fmt"
	"time"

	"github.com/agentos/agentos/core"
	bolt "go.etcd.io/bbolt"
)

// Tokens live at tenant/{id}/tokens/{token_id}; the index maps
// token_secret/{sha256 hex} → "{tenant_id}/{token_id}" for authentication.
// The record keeps its secret hash so rotation can drop the old index entry.

type tokenRecord struct {
	core.Token
	SecretHash string `json:"secret_hash"`
}

func tokenKey(tenantID, tokenID string) []byte { return TenantKey(tenantID, "tokens", tokenID) }
func secretIndexKey(hash string) []byte        { return []byte("token_secret/" + hash) }

func getTokenTx(tx *bolt.Tx, tenantID, tokenID string) (tokenRecord, error) {
	var rec tokenRecord
	ok, err := getJSON(Data(tx), tokenKey(tenantID, tokenID), &rec)
	if err != nil {
		return rec, err
	}
	if !ok {
		return rec, core.NotFound("token", tokenID)
	}
	rec.Token.SecretHash = rec.SecretHash
	return rec, nil
}

func putTokenTx(tx *bolt.Tx, tok core.Token) error {
	return putJSON(Data(tx), tokenKey(tok.TenantID, tok.TokenID), tokenRecord{Token: tok, SecretHash: tok.SecretHash})
}

// CreateToken implements core.TokenPort.
func (s *Store) CreateToken(ctx context.Context, tok core.Token, audit *core.AuditRecord) error {
	if tok.SecretHash == "" {
		return fmt.Errorf("create token: empty secret hash")
	}
	return s.update(ctx, func(tx *bolt.Tx) error {
		if _, err := GetTenantTx(tx, tok.TenantID); err != nil {
			return err
		}
		if Data(tx).Get(tokenKey(tok.TenantID, tok.TokenID)) != nil {
			return core.Errorf(core.CodeConflict, "token %s already exists", tok.TokenID)
		}
		if err := putTokenTx(tx, tok); err != nil {
			return err
		}
		if err := Index(tx).Put(secretIndexKey(tok.SecretHash), []byte(tok.TenantID+"/"+tok.TokenID)); err != nil {
			return err
		}
		return appendAuditIf(tx, audit)
	})
}

// TokenBySecretHash implements core.TokenPort.
func (s *Store) TokenBySecretHash(ctx context.Context, hash string) (core.Token, error) {
	var out core.Token
	err := s.view(func(tx *bolt.Tx) error {
		ref := Index(tx).Get(secretIndexKey(hash))
		if ref == nil {
			return core.Errorf(core.CodeUnauthorized, "unknown API key")
		}
		for i := range ref {
			if ref[i] == '/' {
				rec, err := getTokenTx(tx, string(ref[:i]), string(ref[i+1:]))
				if err != nil {
					return core.Errorf(core.CodeUnauthorized, "unknown API key")
				}
				out = rec.Token
				return nil
			}
		}
		return fmt.Errorf("corrupt token index entry %q", ref)
	})
	return out, err
}

// GetToken implements core.TokenPort.
func (s *Store) GetToken(ctx context.Context, tenantID, tokenID string) (core.Token, error) {
	var out core.Token
	err := s.view(func(tx *bolt.Tx) error {
		rec, err := getTokenTx(tx, tenantID, tokenID)
		out = rec.Token
		return err
	})
	return out, err
}

// ListTokens implements core.TokenPort.
func (s *Store) ListTokens(ctx context.Context, tenantID string) ([]core.Token, error) {
	return listJSONAs(s, Data, TenantKey(tenantID, "tokens", ""), func(rec tokenRecord) core.Token {
		rec.Token.SecretHash = rec.SecretHash
		return rec.Token
	})
}

// RotateToken implements core.TokenPort.
func (s *Store) RotateToken(ctx context.Context, tenantID, tokenID, newHash string, audit *core.AuditRecord) (core.Token, error) {
	var out core.Token
	err := s.update(ctx, func(tx *bolt.Tx) error {
		rec, err := getTokenTx(tx, tenantID, tokenID)
		if err != nil {
			return err
		}
		if rec.RevokedAt != nil {
			return core.Errorf(core.CodeConflict, "token %s is revoked", tokenID)
		}
		if err := Index(tx).Delete(secretIndexKey(rec.SecretHash)); err != nil {
			return err
		}
		tok := rec.Token
		tok.SecretHash = newHash
		if err := putTokenTx(tx, tok); err != nil {
			return err
		}
		if err := Index(tx).Put(secretIndexKey(newHash), []byte(tenantID+"/"+tokenID)); err != nil {
			return err
		}
		out = tok
		return appendAuditIf(tx, audit)
	})
	return out, err
}

// RevokeToken implements core.TokenPort. Revoking twice is harmless.
func (s *Store) RevokeToken(ctx context.Context, tenantID, tokenID string, audit *core.AuditRecord) (core.Token, error) {
	var out core.Token
	err := s.update(ctx, func(tx *bolt.Tx) error {
		rec, err := getTokenTx(tx, tenantID, tokenID)
		if err != nil {
			return err
		}
		tok := rec.Token
		if tok.RevokedAt == nil {
			now := core.Now()
			tok.RevokedAt = &now
		}
		if err := Index(tx).Delete(secretIndexKey(rec.SecretHash)); err != nil {
			return err
		}
		if err := putTokenTx(tx, tok); err != nil {
			return err
		}
		out = tok
		return appendAuditIf(tx, audit)
	})
	return out, err
}

// TouchToken implements core.TokenPort. Touches from many requests share
// batched transactions; it is not audited (it changes no permission).
func (s *Store) TouchToken(ctx context.Context, tenantID, tokenID string, at time.Time) error {
	return s.batch(ctx, func(tx *bolt.Tx) error {
		rec, err := getTokenTx(tx, tenantID, tokenID)
		if err != nil {
			return err
		}
		tok := rec.Token
		if tok.LastUsedAt != nil && !at.After(*tok.LastUsedAt) {
			return nil
		}
		at := at.UTC()
		tok.LastUsedAt = &at
		return putTokenTx(tx, tok)
	})
}
