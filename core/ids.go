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

// The entropy behind every id. Monotonic keeps ids of one process in
// creation order (it buffers the system source, so the lock is held for a
// clock read and an 80-bit add, not a system call); the text encoding
// stays outside the lock.
var (
	idMu      sync.Mutex
	idEntropy = ulid.Monotonic(rand.Reader, 0)
)

// NewID returns prefix + "_" + a ULID. ULIDs minted by one process sort in
// creation order, which the store relies on for newest-first listings.
func NewID(prefix string) string {
	// The clock is read under the lock: read outside, an older millisecond
	// could reset the monotonic entropy between two ids of one goroutine.
	idMu.Lock()
	id, err := ulid.New(ulid.Timestamp(time.Now()), idEntropy)
	idMu.Unlock()
	if err != nil {
		// Only an exhausted monotonic counter within one millisecond
		// (2^80 ids) or a failing system random source get here.
		panic("core: new id: " + err.Error())
	}
	var arr [64]byte
	b := arr[:]
	if size := len(prefix) + 1 + ulid.EncodedSize; size > len(arr) {
		b = make([]byte, size)
	}
	n := copy(b, prefix)
	b[n] = '_'
	n++
	_ = id.MarshalTextTo(b[n : n+ulid.EncodedSize])
	return string(b[:n+ulid.EncodedSize])
}

// HasPrefix reports whether id is of the form prefix_<something>.
func HasPrefix(id, prefix string) bool {
	return strings.HasPrefix(id, prefix+"_") && len(id) > len(prefix)+1
}

// Now is the contract's clock: UTC, so RFC3339 renders with a Z.
func Now() time.Time { return time.Now().UTC() }
