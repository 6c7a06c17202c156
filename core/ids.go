// Package core holds the contract's types (Auth, Tenant, Run, Event, Error,
// IDs) and the ports the stacks talk through. It imports nothing of ours and
// no framework: every other package may depend on it.
package core

import (
	"crypto/rand"
	"strings"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
)

// ID prefixes of CONTRACT.md: every id is prefix + "_" + ULID.
const (
	PrefixTenant      = "tnt"
	PrefixAgent       = "agt"
	PrefixRun         = "run"
	PrefixStep        = "stp"
	PrefixEvent       = "evt"
	PrefixToolCall    = "tcall"
	PrefixRequest     = "req"
	PrefixCorrelation = "corr"
	PrefixToken       = "tok"
	PrefixUser        = "usr"
	PrefixService     = "svc"
	PrefixStack       = "stk"
	PrefixAudit       = "aud"
)

var (
	idMu      sync.Mutex
	idEntropy = ulid.Monotonic(rand.Reader, 0)
)

// NewID returns prefix + "_" + a ULID. ULIDs minted by one process sort in
// creation order, which the store relies on for newest-first listings.
func NewID(prefix string) string {
	idMu.Lock()
	id := ulid.MustNew(ulid.Timestamp(time.Now()), idEntropy)
	idMu.Unlock()
	return prefix + "_" + id.String()
}

// HasPrefix reports whether id is of the form prefix_<something>.
func HasPrefix(id, prefix string) bool {
	return strings.HasPrefix(id, prefix+"_") && len(id) > len(prefix)+1
}

// Now is the contract's clock: UTC, so RFC3339 renders with a Z.
func Now() time.Time { return time.Now().UTC() }
