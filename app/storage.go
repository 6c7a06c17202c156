package app

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/store"
)

// storeSpec is a parsed --store value.
type storeSpec struct {
	Kind string // "bbolt" or "postgres"
	Path string // bbolt file ("" = agentos.db in the data dir)
	URL  string // postgres URL as given
}

// StorePostgresURL is the PostgreSQL URL of cfg's store, "" for bbolt.
func StorePostgresURL(cfg Config) string {
	spec, err := parseStore(cfg.Store)
	if err != nil || spec.Kind != "postgres" {
		return ""
	}
	return spec.URL
}

// parseStore reads "bbolt", "bbolt:PATH" or a postgres:// URL.
func parseStore(v string) (storeSpec, error) {
	switch {
	case v == "" || v == "bbolt":
		return storeSpec{Kind: "bbolt"}, nil
	case strings.HasPrefix(v, "bbolt:"):
		p := strings.TrimPrefix(v, "bbolt:")
		if p == "" {
			return storeSpec{}, fmt.Errorf("bbolt: needs a file path (bbolt:/var/lib/agentos/agentos.db)")
		}
		return storeSpec{Kind: "bbolt", Path: p}, nil
	case strings.HasPrefix(v, "postgres://"), strings.HasPrefix(v, "postgresql://"):
		u, err := url.Parse(v)
		if err != nil || u.Host == "" {
			return storeSpec{}, fmt.Errorf("%q is not a postgres://user@host:port/database URL", redactURL(v))
		}
		return storeSpec{Kind: "postgres", URL: v}, nil
	default:
		return storeSpec{}, fmt.Errorf("%q is not bbolt, bbolt:PATH or a postgres:// URL", redactURL(v))
	}
}

// redactURL drops the password of a URL so it can be shown.
func redactURL(v string) string {
	u, err := url.Parse(v)
	if err != nil || u.User == nil {
		return v
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// storeHasPassword reports a --store URL that carries a password (which
// .agentos.env must not hold).
func storeHasPassword(v string) bool {
	u, err := url.Parse(v)
	if err != nil || u.User == nil {
		return false
	}
	_, ok := u.User.Password()
	return ok
}

// StoreFile is the bbolt file of cfg's store (absolute), "" when the
// store is PostgreSQL or the setting does not parse.
func StoreFile(cfg Config) string {
	spec, err := parseStore(cfg.Store)
	if err != nil || spec.Kind != "bbolt" {
		return ""
	}
	path := spec.Path
	if path == "" {
		path = cfg.Path("agentos.db")
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	return path
}

// DescribeStore names the configured store for reports without opening
// it (never a password).
func DescribeStore(cfg Config) string {
	spec, err := parseStore(cfg.Store)
	if err != nil {
		return "invalid store"
	}
	if spec.Kind == "postgres" {
		return redactURL(spec.URL)
	}
	if spec.Path != "" {
		return "bbolt " + spec.Path
	}
	return "bbolt " + cfg.Path("agentos.db")
}

// OpenOptions tune OpenStorage for a caller.
type OpenOptions struct {
	// LockTimeout bounds waiting for a bbolt file another process holds.
	LockTimeout time.Duration
	// ResetBroken (serve --reset) renames a bbolt file the store refuses
	// as empty or damaged to <file>.broken-<UTC time> and creates a new
	// one; OnReset, when set, is told where it went and why.
	ResetBroken bool
	OnReset     func(aside, reason string)
	// OnOpen, when set, is told how a bbolt file was judged at open (a
	// quick check after a clean stop, a full walk after a crash).
	OnOpen func(store.OpenCheck)
}

// OpenStorage opens the storage the configuration names: the one place
// that knows the adapters. The node and every operator command go
// through it.
func OpenStorage(ctx context.Context, cfg Config, opt OpenOptions) (core.Storage, error) {
	spec, err := parseStore(cfg.Store)
	if err != nil {
		return nil, err
	}
	switch spec.Kind {
	case "postgres":
		return openPostgres(ctx, spec.URL)
	default:
		path := spec.Path
		if path == "" {
			path = cfg.Path("agentos.db")
		} else if !filepath.IsAbs(path) {
			if abs, err := filepath.Abs(path); err == nil {
				path = abs
			}
		}
		s, err := store.Open(path, store.Options{Timeout: opt.LockTimeout})
		var be *store.BrokenError
		if errors.As(err, &be) && opt.ResetBroken {
			aside := path + ".broken-" + time.Now().UTC().Format("20060102T150405Z")
			if err := os.Rename(path, aside); err != nil {
				return nil, fmt.Errorf("--reset: move %s aside: %w", path, err)
			}
			if opt.OnReset != nil {
				opt.OnReset(aside, be.Reason)
			}
			s, err = store.Open(path, store.Options{Timeout: opt.LockTimeout})
		}
		if err != nil {
			return nil, err // not a typed nil in the interface
		}
		if opt.OnOpen != nil {
			opt.OnOpen(s.Opened())
		}
		return s, nil
	}
}
