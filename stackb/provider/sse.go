package provider

import (
	"context"
	"io"

	"github.com/agentos/agentos/internal/sse"
)

// upstreamEventLimit bounds one line, and one event's data, of an upstream
// model stream.
const upstreamEventLimit = 4 << 20

// readSSE reads an upstream's server-sent event stream (internal/sse) and
// hands each event's data to fn as it arrives, until fn says stop, fn
// fails, or the stream ends. A last event without its blank line still
// counts: upstreams end that way. A broken stream, or a line or event
// over upstreamEventLimit, is a transport error of backend.
func readSSE(ctx context.Context, backend string, r io.Reader, fn func(data []byte) (more bool, err error)) error {
	rd := sse.NewReader(r, upstreamEventLimit)
	rd.DispatchAtEOF = true
	for {
		ev, err := rd.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return transportError(ctx, backend, err)
		}
		if more, err := fn(ev.Data); err != nil || !more {
			return err
		}
	}
}
