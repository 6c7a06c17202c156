// Package app is the composition root: configuration and node wiring.
// It is the only package that knows every adapter; the HTTP edge the
// three routers share is package edge, the CLI package operator.
package app

import (
	"bufio"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/edge"
)

// Modes of the node.
const (
	ModeDemo = "demo"
	ModeDev  = "dev"
	ModeProd = "prod"
)

// SMTPConfig is where alert email goes.
type SMTPConfig struct {
	Host     string
	Port     int
	From     string
	To       []string
	User     string
	Password string
	// StartTLS: "auto" (when offered), "require" or "off".
	StartTLS string
}

// Enabled reports whether alert email is configured.
func (s SMTPConfig) Enabled() bool { return s.Host != "" && len(s.To) > 0 }

// Config is every setting of the node (CONTRACT §7.1 plus the knobs the
// issues add). Fill it with DefaultConfig, then LoadConfig's layers.
type Config struct {
	DataDir string
	// Store selects the storage adapter: "bbolt" (the file agentos.db in
	// the data dir), "bbolt:PATH", or a postgres:// URL.
	Store         string
	StackAAddr    string
	StackBAddr    string
	FedAddr       string
	Mode          string
	Profile       string
	StackID       string
	Region        string
	Environment   string
	PeersFile     string
	StackBURL     string
	StackBAPIKey  string
	ProvidersFile string
	SMTP          SMTPConfig

	// ToolEgressAllow lists hosts and CIDRs tools may call.
	ToolEgressAllow []string
	// TenantSecretsDir is an operator-named directory of tenants' secrets
	// (<dir>/<tenant_id>/<name>) that a tool's secret:<name> may name,
	// besides the tenant's secret store; empty means the store only.
	TenantSecretsDir string
	// BodyLimit caps request bodies (413 beyond).
	BodyLimit int64
	// AuthFailuresPerMinute is the per-client-IP allowance of
	// unauthenticated and failed-auth requests before 429.
	AuthFailuresPerMinute int
	// JWT verification beyond HS256 with the node secret.
	JWTPublicKeyFiles []string
	JWTJWKSFile       string
	JWTIssuer         string
	JWTAudience       string
	// Federation mTLS (all three or none).
	FedTLSCert string
	FedTLSKey  string
	FedTLSCA   string
	// OTLPEndpoint turns on trace export (host:port or URL); empty = off.
	OTLPEndpoint string
	// ShutdownTimeout bounds the graceful stop.
	ShutdownTimeout time.Duration
	// LogLevel is zerolog's level name.
	LogLevel string
	// Workers is the executor's global concurrency cap.
	Workers int
	// TenantLabelLimit is how many tenants (top by traffic) get their own
	// value of the `tenant` metric label; the rest share "other".
	TenantLabelLimit int
	// AlertInterval is how often the built-in alert rules are evaluated;
	// AlertRepeat re-sends a still-firing alert's mail (0: once per episode).
	AlertInterval time.Duration
	AlertRepeat   time.Duration
	// DebugAddr, when set, serves Go's pprof profiles on this loopback
	// address (/debug/pprof/); empty (the default) serves nothing.
	DebugAddr string
	// NodeID names this process among the nodes sharing a PostgreSQL
	// store (generated once into <data-dir>/node.id when empty).
	NodeID string
	// RunLease is how long a cluster node's claim on a run lives without
	// renewal: a dead node's runs are taken over after about this long.
	RunLease time.Duration
	// CacheTTL is how long a tenant, agent or tool read on the request path
	// is reused by Stack A and Stack B. Every write drops the cached copies
	// at once on every node (the change feed, LISTEN/NOTIFY in a cluster);
	// the TTL only bounds a change whose notice was lost (node crashed
	// between commit and notice).
	CacheTTL time.Duration
	// ReadHeaderTimeout bounds reading a request's headers; BodyReadTimeout
	// bounds reading its body once the caller is authenticated (408 and
	// the connection closed beyond); IdleTimeout closes idle keep-alive
	// connections. Responses (SSE streams) are not bounded by them.
	ReadHeaderTimeout time.Duration
	BodyReadTimeout   time.Duration
	IdleTimeout       time.Duration
	// BodyMemory is the node-wide budget of request body bytes buffered at
	// once (each body reserves its Content-Length, or BodyLimit when
	// chunked); beyond it a body is refused with 429 before it is read.
	BodyMemory int64
	// MaxEventStreams caps open Stack A SSE streams on the node (0: the
	// smaller of 1000 and a quarter of the descriptor limit) and
	// MaxEventStreamsPerTenant those of one tenant.
	MaxEventStreams          int
	MaxEventStreamsPerTenant int
	// MaxRequestsInFlight caps requests being answered at once on the
	// node (event subscriptions and probes not counted); beyond it a
	// request is refused at once with 429 requests_in_flight.
	MaxRequestsInFlight int
	// MaxConnections caps the connections each router holds open; one
	// over it is answered 429 (kind connections) and closed at once.
	MaxConnections int
	// ResetBrokenStore (serve --reset) moves an empty or damaged database
	// aside (agentos.db.broken-<time>, never deleted) and starts a new,
	// empty node; a healthy database is always kept.
	ResetBrokenStore bool
	// Retention is how long per-request records are kept (days per kind;
	// 0 keeps them); a tenant's quotas.retention overrides it.
	// RetentionInterval is the time between sweeps, RetentionBatch the
	// records one sweep transaction removes at most.
	Retention         core.Retention
	RetentionInterval time.Duration
	RetentionBatch    int
}

// DefaultConfig is the built-in layer.
func DefaultConfig() Config {
	return Config{
		DataDir:                  "./.agentos",
		Store:                    "bbolt",
		StackAAddr:               "127.0.0.1:8080",
		StackBAddr:               "127.0.0.1:8081",
		FedAddr:                  "127.0.0.1:8082",
		Mode:                     ModeDemo,
		Profile:                  "local",
		Region:                   "local",
		BodyLimit:                1 << 20,
		AuthFailuresPerMinute:    100,
		SMTP:                     SMTPConfig{Port: 25, StartTLS: "auto", From: "agentos@localhost"},
		ShutdownTimeout:          10 * time.Second,
		LogLevel:                 "info",
		Workers:                  64,
		TenantLabelLimit:         20,
		AlertInterval:            30 * time.Second,
		ReadHeaderTimeout:        10 * time.Second,
		BodyReadTimeout:          30 * time.Second,
		IdleTimeout:              120 * time.Second,
		BodyMemory:               64 << 20,
		MaxEventStreamsPerTenant: 100,
		MaxRequestsInFlight:      edge.DefaultMaxRequestsInFlight,
		MaxConnections:           edge.DefaultMaxConnections,
		RunLease:                 10 * time.Second,
		CacheTTL:                 time.Second,
		Retention:                core.DefaultRetention,
		RetentionInterval:        time.Hour,
		RetentionBatch:           500,
	}
}

// positiveInt parses an integer of at least min into dst.
// retentionDays reads a retention in days ("90" or "90d"; 0 keeps the
// records).
func retentionDays(dst func(*Config) *int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), "d"))
		if err != nil || n < 0 || n > core.MaxRetentionDays {
			return fmt.Errorf("want days 0..%d (0 keeps the records), got %q", core.MaxRetentionDays, v)
		}
		*dst(c) = n
		return nil
	}
}

func positiveInt(dst func(*Config) *int, min int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < min {
			return fmt.Errorf("want an integer >= %d, got %q", min, v)
		}
		*dst(c) = n
		return nil
	}
}

// setting is one configurable value: its flag, its variable, and how a
// string sets it.
type setting struct {
	Flag  string
	Env   string
	Usage string
	Set   func(c *Config, v string) error
	// Secret settings are never echoed in reports and are refused in
	// plain text in .agentos.env in prod mode.
	Secret bool
}

func splitList(v string) []string {
	var out []string
	for _, p := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' }) {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// duration parses a Go duration of at least min.
func duration(dst func(*Config) *time.Duration, min time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < min {
			return fmt.Errorf("want a duration of at least %v (like 30s), got %q", min, v)
		}
		*dst(c) = d
		return nil
	}
}

func str(dst func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *dst(c) = v; return nil }
}

// settings is the table behind flags, variables and .agentos.env.
var settings = []setting{
	{"data-dir", "AGENTOS_DATA_DIR", "data directory (bbolt file, keys, credentials, logs, pid)", str(func(c *Config) *string { return &c.DataDir }), false},
	{"store", "AGENTOS_STORE", "storage: bbolt (the file in the data dir), bbolt:PATH, or postgres://user@host:port/db (password from PGPASSWORD or ~/.pgpass)", str(func(c *Config) *string { return &c.Store }), false},
	{"stack-a-addr", "AGENTOS_STACK_A_ADDR", "Stack A listen address", str(func(c *Config) *string { return &c.StackAAddr }), false},
	{"stack-b-addr", "AGENTOS_STACK_B_ADDR", "Stack B listen address", str(func(c *Config) *string { return &c.StackBAddr }), false},
	{"fed-addr", "AGENTOS_FED_ADDR", "federation listen address", str(func(c *Config) *string { return &c.FedAddr }), false},
	{"mode", "AGENTOS_MODE", "demo|dev|prod", str(func(c *Config) *string { return &c.Mode }), false},
	{"profile", "AGENTOS_PROFILE", "local|federated", str(func(c *Config) *string { return &c.Profile }), false},
	{"stack-id", "AGENTOS_STACK_ID", "this node's stack id (generated once when empty)", str(func(c *Config) *string { return &c.StackID }), false},
	{"region", "AGENTOS_REGION", "region reported to peers", str(func(c *Config) *string { return &c.Region }), false},
	{"environment", "AGENTOS_ENVIRONMENT", "environment reported to peers (default: the mode)", str(func(c *Config) *string { return &c.Environment }), false},
	{"peers-file", "AGENTOS_PEERS_FILE", "federation peers JSON file", str(func(c *Config) *string { return &c.PeersFile }), false},
	{"stack-b-url", "AGENTOS_STACK_B_URL", "remote Stack B base URL (default: in-process)", str(func(c *Config) *string { return &c.StackBURL }), false},
	{"stack-b-api-key", "AGENTOS_STACK_B_API_KEY", "credential for a remote Stack B (default: a JWT signed with the node secret)", str(func(c *Config) *string { return &c.StackBAPIKey }), true},
	{"providers-file", "AGENTOS_PROVIDERS_FILE", "model providers JSON file", str(func(c *Config) *string { return &c.ProvidersFile }), false},
	{"smtp-host", "AGENTOS_SMTP_HOST", "SMTP server host for alerts", str(func(c *Config) *string { return &c.SMTP.Host }), false},
	{"smtp-port", "AGENTOS_SMTP_PORT", "SMTP server port", func(c *Config, v string) error {
		p, err := strconv.Atoi(v)
		if err != nil || p < 1 || p > 65535 {
			return fmt.Errorf("not a port: %q", v)
		}
		c.SMTP.Port = p
		return nil
	}, false},
	{"smtp-from", "AGENTOS_SMTP_FROM", "alert sender address", str(func(c *Config) *string { return &c.SMTP.From }), false},
	{"smtp-to", "AGENTOS_SMTP_TO", "alert recipients (comma separated)", func(c *Config, v string) error { c.SMTP.To = splitList(v); return nil }, false},
	{"smtp-user", "AGENTOS_SMTP_USER", "SMTP auth user", str(func(c *Config) *string { return &c.SMTP.User }), false},
	{"smtp-password", "AGENTOS_SMTP_PASSWORD", "SMTP auth password", str(func(c *Config) *string { return &c.SMTP.Password }), true},
	{"smtp-starttls", "AGENTOS_SMTP_STARTTLS", "auto|require|off", str(func(c *Config) *string { return &c.SMTP.StartTLS }), false},
	{"tool-egress-allow", "AGENTOS_TOOL_EGRESS_ALLOW", "hosts and CIDRs tools may call (comma separated)", func(c *Config, v string) error { c.ToolEgressAllow = splitList(v); return nil }, false},
	{"tenant-secrets-dir", "AGENTOS_TENANT_SECRETS_DIR", "directory of tenants' webhook secrets, <dir>/<tenant_id>/<name> (default: the admin API's secret store only)", str(func(c *Config) *string { return &c.TenantSecretsDir }), false},
	{"body-limit", "AGENTOS_BODY_LIMIT", "maximum request body in bytes", func(c *Config, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1024 {
			return fmt.Errorf("want bytes >= 1024, got %q", v)
		}
		c.BodyLimit = n
		return nil
	}, false},
	{"auth-failures-per-minute", "AGENTOS_AUTH_FAILURES_PER_MINUTE", "per-IP allowance of failed or missing credentials", func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fmt.Errorf("want a positive integer, got %q", v)
		}
		c.AuthFailuresPerMinute = n
		return nil
	}, false},
	{"jwt-public-keys", "AGENTOS_JWT_PUBLIC_KEYS", "PEM public key files for RS256/ES256/EdDSA JWTs (comma separated)", func(c *Config, v string) error { c.JWTPublicKeyFiles = splitList(v); return nil }, false},
	{"jwt-jwks-file", "AGENTOS_JWT_JWKS_FILE", "JWKS file with JWT verification keys", str(func(c *Config) *string { return &c.JWTJWKSFile }), false},
	{"jwt-issuer", "AGENTOS_JWT_ISSUER", "required JWT iss (empty: not checked)", str(func(c *Config) *string { return &c.JWTIssuer }), false},
	{"jwt-audience", "AGENTOS_JWT_AUDIENCE", "required JWT aud (empty: not checked)", str(func(c *Config) *string { return &c.JWTAudience }), false},
	{"fed-tls-cert", "AGENTOS_FED_TLS_CERT", "federation mTLS certificate file", str(func(c *Config) *string { return &c.FedTLSCert }), false},
	{"fed-tls-key", "AGENTOS_FED_TLS_KEY", "federation mTLS key file", str(func(c *Config) *string { return &c.FedTLSKey }), false},
	{"fed-tls-ca", "AGENTOS_FED_TLS_CA", "federation mTLS CA file", str(func(c *Config) *string { return &c.FedTLSCA }), false},
	{"otlp-endpoint", "AGENTOS_OTLP_ENDPOINT", "OTLP/HTTP trace endpoint (empty: tracing export off)", str(func(c *Config) *string { return &c.OTLPEndpoint }), false},
	{"debug-addr", "AGENTOS_DEBUG_ADDR", "serve pprof profiles on this loopback address, e.g. 127.0.0.1:6060 (empty: off)", str(func(c *Config) *string { return &c.DebugAddr }), false},
	{"log-level", "AGENTOS_LOG_LEVEL", "debug|info|warn|error", str(func(c *Config) *string { return &c.LogLevel }), false},
	{"metrics-tenant-labels", "AGENTOS_METRICS_TENANT_LABELS", "how many tenants (top by traffic) get their own metric label", func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 1000 {
			return fmt.Errorf("want 0..1000, got %q", v)
		}
		c.TenantLabelLimit = n
		return nil
	}, false},
	{"alert-interval", "AGENTOS_ALERT_INTERVAL", "how often the built-in alert rules run (e.g. 30s)", duration(func(c *Config) *time.Duration { return &c.AlertInterval }, time.Second), false},
	{"alert-repeat", "AGENTOS_ALERT_REPEAT", "re-send a still-firing alert after this long (0: once per episode)", duration(func(c *Config) *time.Duration { return &c.AlertRepeat }, 0), false},
	{"node-id", "AGENTOS_NODE_ID", "this node's id in a cluster (default: generated once into <data-dir>/node.id)", str(func(c *Config) *string { return &c.NodeID }), false},
	{"run-lease", "AGENTOS_RUN_LEASE", "cluster: how long a node's claim on a run lasts unrenewed; a dead node's runs are taken over after it (e.g. 10s)", duration(func(c *Config) *time.Duration { return &c.RunLease }, 500*time.Millisecond), false},
	{"cache-ttl", "AGENTOS_CACHE_TTL", "longest a cached tenant, agent or tool is reused; writes invalidate at once on every node, this only bounds a lost notice (e.g. 1s)", duration(func(c *Config) *time.Duration { return &c.CacheTTL }, time.Millisecond), false},
	{"read-header-timeout", "AGENTOS_READ_HEADER_TIMEOUT", "longest a client may take to send a request's headers", duration(func(c *Config) *time.Duration { return &c.ReadHeaderTimeout }, 100*time.Millisecond), false},
	{"body-read-timeout", "AGENTOS_BODY_READ_TIMEOUT", "longest a client may take to send a request body (408 and closed beyond)", duration(func(c *Config) *time.Duration { return &c.BodyReadTimeout }, 100*time.Millisecond), false},
	{"idle-timeout", "AGENTOS_IDLE_TIMEOUT", "idle keep-alive connections are closed after this long", duration(func(c *Config) *time.Duration { return &c.IdleTimeout }, time.Second), false},
	{"body-memory", "AGENTOS_BODY_MEMORY", "node-wide bytes of request bodies buffered at once (429 beyond)", func(c *Config, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1024 {
			return fmt.Errorf("want bytes >= 1024, got %q", v)
		}
		c.BodyMemory = n
		return nil
	}, false},
	{"max-event-streams", "AGENTOS_MAX_EVENT_STREAMS", "open Stack A event streams on the node (default: min(1000, descriptor limit / 4))", positiveInt(func(c *Config) *int { return &c.MaxEventStreams }, 1), false},
	{"max-event-streams-per-tenant", "AGENTOS_MAX_EVENT_STREAMS_PER_TENANT", "open Stack A event streams of one tenant", positiveInt(func(c *Config) *int { return &c.MaxEventStreamsPerTenant }, 1), false},
	{"max-requests-in-flight", "AGENTOS_MAX_REQUESTS_IN_FLIGHT", "requests answered at once on the node, event streams and probes not counted (429 requests_in_flight beyond)", positiveInt(func(c *Config) *int { return &c.MaxRequestsInFlight }, 1), false},
	{"retention-audit-days", "AGENTOS_RETENTION_AUDIT_DAYS", "days audit records are kept (0: forever; a tenant's quotas.retention overrides)", retentionDays(func(c *Config) *int { return &c.Retention.AuditDays }), false},
	{"retention-usage-days", "AGENTOS_RETENTION_USAGE_DAYS", "days usage detail is kept: minute and hour ledger entries and stored model answers (daily entries stay; 0: forever)", retentionDays(func(c *Config) *int { return &c.Retention.UsageDetailDays }), false},
	{"retention-runs-days", "AGENTOS_RETENTION_RUNS_DAYS", "days finished runs, their events and idempotency keys are kept (queued and running runs always stay; 0: forever)", retentionDays(func(c *Config) *int { return &c.Retention.RunsDays }), false},
	{"retention-interval", "AGENTOS_RETENTION_INTERVAL", "time between retention sweeps (e.g. 1h)", duration(func(c *Config) *time.Duration { return &c.RetentionInterval }, time.Second), false},
	{"retention-batch", "AGENTOS_RETENTION_BATCH", "records one sweep transaction removes at most (small keeps writers waiting briefly)", positiveInt(func(c *Config) *int { return &c.RetentionBatch }, 10), false},
	{"max-connections", "AGENTOS_MAX_CONNECTIONS", "open connections per router (a connection over it is answered 429 connections and closed)", positiveInt(func(c *Config) *int { return &c.MaxConnections }, 1), false},
	{"workers", "AGENTOS_WORKERS", "global cap of concurrently executing runs", func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fmt.Errorf("want a positive integer, got %q", v)
		}
		c.Workers = n
		return nil
	}, false},
}

// EnvFileName is the editable settings file of the working directory.
const EnvFileName = ".agentos.env"

// ReadEnvFile parses KEY=VALUE lines (# comments, optional quotes). A
// missing file is an empty map.
func ReadEnvFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		s = strings.TrimPrefix(s, "export ")
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			return nil, fmt.Errorf("%s:%d: want KEY=VALUE", path, line)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' && v[len(v)-1] == '"' || v[0] == '\'' && v[len(v)-1] == '\'') {
			v = v[1 : len(v)-1]
		}
		out[k] = v
	}
	return out, sc.Err()
}

// WriteEnvFile writes the settings of cfg that differ from the defaults,
// plus the essentials, so an operator can edit them. Secrets are never
// written.
func WriteEnvFile(path string, cfg Config) error {
	vals := map[string]string{
		"AGENTOS_DATA_DIR":     cfg.DataDir,
		"AGENTOS_STACK_A_ADDR": cfg.StackAAddr,
		"AGENTOS_STACK_B_ADDR": cfg.StackBAddr,
		"AGENTOS_FED_ADDR":     cfg.FedAddr,
		"AGENTOS_MODE":         cfg.Mode,
		"AGENTOS_REGION":       cfg.Region,
	}
	if cfg.Store != "" && cfg.Store != "bbolt" && !storeHasPassword(cfg.Store) {
		vals["AGENTOS_STORE"] = cfg.Store
	}
	if cfg.ProvidersFile != "" {
		vals["AGENTOS_PROVIDERS_FILE"] = cfg.ProvidersFile
	}
	if cfg.PeersFile != "" {
		vals["AGENTOS_PEERS_FILE"] = cfg.PeersFile
	}
	if cfg.SMTP.Host != "" {
		vals["AGENTOS_SMTP_HOST"] = cfg.SMTP.Host
		vals["AGENTOS_SMTP_PORT"] = strconv.Itoa(cfg.SMTP.Port)
		vals["AGENTOS_SMTP_TO"] = strings.Join(cfg.SMTP.To, ",")
	}
	keys := slices.Sorted(maps.Keys(vals))
	var b strings.Builder
	b.WriteString("# AgentOS node settings, written by `agentos up`. Edit freely:\n")
	b.WriteString("# flags override these, and these override the built-in defaults.\n")
	b.WriteString("# Secrets (SMTP password, provider keys) belong in the environment or\n# in owner-only files, not here.\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, vals[k])
	}
	return os.WriteFile(path, []byte(b.String()), 0o600)
}

// Layers are the sources of LoadConfig, lowest precedence first after the
// defaults.
type Layers struct {
	EnvFile map[string]string // .agentos.env
	Environ func(string) (string, bool)
	Flags   map[string]string // flags the user set explicitly
}

// LoadConfig applies .agentos.env, then the environment, then flags, onto
// the defaults, and validates the result.
func LoadConfig(l Layers) (Config, error) {
	cfg := DefaultConfig()
	if l.Environ == nil {
		l.Environ = os.LookupEnv
	}
	for _, s := range settings {
		if v, ok := l.EnvFile[s.Env]; ok {
			if err := s.Set(&cfg, v); err != nil {
				return cfg, fmt.Errorf("%s %s: %w", EnvFileName, s.Env, err)
			}
		}
		if v, ok := l.Environ(s.Env); ok {
			if err := s.Set(&cfg, v); err != nil {
				return cfg, fmt.Errorf("environment %s: %w", s.Env, err)
			}
		}
		if v, ok := l.Flags[s.Flag]; ok {
			if err := s.Set(&cfg, v); err != nil {
				return cfg, fmt.Errorf("flag --%s: %w", s.Flag, err)
			}
		}
	}
	if cfg.Environment == "" {
		cfg.Environment = cfg.Mode
	}
	return cfg, cfg.Validate()
}

// PlaintextSecretsInEnvFile names the secret settings written in the env
// file; prod refuses to start with any.
func PlaintextSecretsInEnvFile(envFile map[string]string) []string {
	var out []string
	for _, s := range settings {
		if _, ok := envFile[s.Env]; ok && s.Secret {
			out = append(out, s.Env)
		}
	}
	for k := range envFile {
		if strings.HasSuffix(k, "_API_KEY") || strings.Contains(k, "SECRET") || strings.HasSuffix(k, "_PASSWORD") {
			if !slices.Contains(out, k) {
				out = append(out, k)
			}
		}
	}
	sort.Strings(out)
	return out
}

// Validate names the first bad field.
func (c Config) Validate() error {
	switch c.Mode {
	case ModeDemo, ModeDev, ModeProd:
	default:
		return fmt.Errorf("config mode: %q is not demo, dev or prod", c.Mode)
	}
	switch c.Profile {
	case "local", "federated":
	default:
		return fmt.Errorf("config profile: %q is not local or federated", c.Profile)
	}
	if c.DataDir == "" {
		return fmt.Errorf("config data_dir: empty")
	}
	if _, err := parseStore(c.Store); err != nil {
		return fmt.Errorf("config store: %w", err)
	}
	for name, a := range map[string]string{"stack_a_addr": c.StackAAddr, "stack_b_addr": c.StackBAddr, "fed_addr": c.FedAddr} {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("config %s: %q is not host:port", name, a)
		}
	}
	if c.DebugAddr != "" {
		if err := loopbackAddr(c.DebugAddr); err != nil {
			return fmt.Errorf("config debug_addr: %w", err)
		}
	}
	n := 0
	for _, f := range []string{c.FedTLSCert, c.FedTLSKey, c.FedTLSCA} {
		if f != "" {
			n++
		}
	}
	if n != 0 && n != 3 {
		return fmt.Errorf("config fed_tls: set cert, key and CA together")
	}
	if c.BodyMemory < c.BodyLimit {
		return fmt.Errorf("config body_memory: %d is less than body_limit %d, so a largest body could never be read", c.BodyMemory, c.BodyLimit)
	}
	switch c.SMTP.StartTLS {
	case "auto", "require", "off":
	default:
		return fmt.Errorf("config smtp_starttls: %q is not auto, require or off", c.SMTP.StartTLS)
	}
	return nil
}

// Path joins name onto the data dir.
func (c Config) Path(name string) string { return filepath.Join(c.DataDir, name) }

// loopbackAddr accepts host:port on a loopback address only: the debug
// listener exposes the process's internals and must not face a network.
func loopbackAddr(a string) error {
	host, _, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Errorf("%q is not host:port", a)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("%q is not a loopback address (pprof must not face a network)", a)
	}
	return nil
}

// authConfig is the part of the configuration the edge's Authenticator
// reads.
func (c Config) authConfig() edge.AuthConfig {
	return edge.AuthConfig{JWTIssuer: c.JWTIssuer, JWTAudience: c.JWTAudience,
		JWTPublicKeyFiles: c.JWTPublicKeyFiles, JWTJWKSFile: c.JWTJWKSFile, Region: c.Region}
}
