// Package sse is the one reader of server-sent event streams in AgentOS:
// the federation relay, Stack B's upstream model streams, the operator
// CLI, the bench harness and the test kit all frame events through
// Reader, so the stream format is parsed one way, with one bound.
//
// Reader follows the event-stream parsing rules of the WHATWG HTML
// standard (§9.2.6 "Interpreting an event stream"): lines end with LF,
// CRLF or CR; a line starting with ':' is a comment; "field: value" loses
// one leading space of its value, a line with no ':' is a field with an
// empty value; data lines join with '\n'; a blank line dispatches the
// event unless it carried no data line; the id persists from event to
// event until an id field changes it (an id holding NUL is ignored);
// retry takes only ASCII digits; other fields are ignored; one leading
// byte order mark is skipped. It does not check that the stream is
// UTF-8: bytes pass through as they came.
//
// Two things the standard leaves to the user agent, decided here:
//
//   - A stream that ends in the middle of an event (no blank line after
//     it, or its last line without a line end) loses that event, as the
//     standard says, unless Reader.DispatchAtEOF is set, in which case it
//     is dispatched as if the blank line had come. Upstream model
//     providers end that way; our own servers never do.
//   - Memory is bounded by the limit given to NewReader: a line, and the
//     joined data of one event, longer than limit bytes end the stream
//     with an error wrapping ErrTooLong. The reader never holds more than
//     four buffers of about the limit each (read buffer, data, name, id),
//     whatever the peer sends.
//
// Reading costs no allocation per event once the reader's buffers have
// grown to the stream's largest event: an Event's fields alias the
// reader's buffers, valid until the next call to Next; copy what you keep.
package sse

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
)

// ErrTooLong is wrapped by the error Next returns when a line or an
// event's data is longer than the reader's limit. The reader is done
// after it: Next keeps returning it.
var ErrTooLong = errors.New("sse: line or event data longer than the limit")

// initialBuffer is the read buffer a reader starts with (smaller when the
// limit is): big enough for a burst of typical run events per read, small
// enough that a load generator opening a stream per run stays cheap. It
// doubles, up to the limit, when a line does not fit.
const initialBuffer = 16 << 10

// Event is one dispatched event. Its slices alias the Reader's buffers
// and stay valid only until the next call to Next.
type Event struct {
	// ID is the last event ID: set by the latest id field of the stream
	// so far (this event's or an earlier one's), empty when none came.
	ID []byte
	// Name is the event's "event" field, empty when it had none (a
	// browser would call the event "message").
	Name []byte
	// Data is the event's data lines joined with '\n'; it may be empty
	// (an event of one empty "data:" line) but the event had data.
	Data []byte
}

// Reader reads events from a server-sent event stream.
type Reader struct {
	// DispatchAtEOF, set before the first Next, makes an event the
	// stream ends in the middle of (it had data but no blank line after
	// it, even if its last line has no line end) come out of Next before
	// io.EOF. Unset, such an event is discarded as the standard says.
	DispatchAtEOF bool

	src   io.Reader
	limit int

	buf     []byte // read buffer; its length never exceeds limit+1
	r, w    int    // unread bytes are buf[r:w]
	scanned int    // buf[r:r+scanned] is known to hold no line end
	skipLF  bool   // the last line ended with a CR that was the last byte read: a LF next belongs to it
	started bool   // a line was read (the byte order mark is only skipped before the first)
	err     error  // the source's error (io.EOF at its end), or the too-long error; returned once buf is drained

	id, name, data []byte // data holds each data line followed by '\n'
	comments       int
	retry          time.Duration
	hasRetry       bool
}

// NewReader returns a reader of src whose lines and event data may be
// limit bytes long at most. limit must be positive.
func NewReader(src io.Reader, limit int) *Reader {
	if limit < 1 {
		panic("sse: NewReader with a limit below one byte")
	}
	return &Reader{src: src, limit: limit}
}

// Next returns the next event. At the end of the stream it returns
// io.EOF; a read error of the source is returned as it came (after the
// events read before it); a line or event over the limit is an error
// wrapping ErrTooLong. Once Next returns an error it returns it again.
func (r *Reader) Next() (Event, error) {
	for {
		line, err := r.line()
		if err != nil {
			if err == io.EOF && r.DispatchAtEOF && len(r.data) > 0 {
				return r.dispatch(), nil
			}
			r.data, r.name = r.data[:0], r.name[:0]
			return Event{}, err
		}
		if len(line) == 0 {
			if len(r.data) > 0 {
				return r.dispatch(), nil
			}
			r.name = r.name[:0]
			continue
		}
		if err := r.field(line); err != nil {
			r.err, r.r, r.w, r.scanned = err, 0, 0, 0
			r.data, r.name = r.data[:0], r.name[:0]
			return Event{}, err
		}
	}
}

// Comments returns how many comment lines (": ping") the reader has
// passed over so far.
func (r *Reader) Comments() int { return r.comments }

// Retry returns the reconnection time the stream last asked for with a
// retry field, and whether it asked at all.
func (r *Reader) Retry() (time.Duration, bool) { return r.retry, r.hasRetry }

// Buffered returns how many bytes have been read from the source and not
// yet parsed: when it is zero, the next call to Next reads the source
// (and may block), which is when a relay should flush what it has sent.
func (r *Reader) Buffered() int { return r.w - r.r }

// dispatch hands out the pending event and empties the data and name
// buffers (keeping their memory for the next event).
func (r *Reader) dispatch() Event {
	ev := Event{ID: r.id, Name: r.name, Data: r.data[:len(r.data)-1]}
	r.data, r.name = r.data[:0], r.name[:0]
	return ev
}

// field applies one non-blank line to the pending event.
func (r *Reader) field(line []byte) error {
	if line[0] == ':' {
		r.comments++
		return nil
	}
	name, value := line, line[len(line):]
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		name, value = line[:i], line[i+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	switch string(name) {
	case "data":
		if len(r.data)+len(value) > r.limit {
			return fmt.Errorf("%w: event data over %d bytes", ErrTooLong, r.limit)
		}
		r.data = append(append(reserve(r.data, len(value)+1, r.limit+1), value...), '\n')
	case "event":
		r.name = append(reserve(r.name[:0], len(value), r.limit), value...)
	case "id":
		if bytes.IndexByte(value, 0) < 0 {
			r.id = append(reserve(r.id[:0], len(value), r.limit), value...)
		}
	case "retry":
		if ms, ok := parseDigits(value); ok {
			r.retry, r.hasRetry = time.Duration(ms)*time.Millisecond, true
		}
	}
	return nil
}

// line returns the next line without its line end, a slice of the read
// buffer valid until the next call. At the end of the source, a last line
// without a line end is returned when DispatchAtEOF is set and dropped
// otherwise, and then the source's error is.
func (r *Reader) line() ([]byte, error) {
	for {
		if r.skipLF && r.r < r.w {
			if r.buf[r.r] == '\n' {
				r.r++
			}
			r.skipLF = false
		}
		if i := lineEnd(r.buf[r.r+r.scanned : r.w]); i >= 0 {
			end := r.r + r.scanned + i
			line := r.buf[r.r:end]
			r.r, r.scanned = end+1, 0
			if r.buf[end] == '\r' {
				if r.r < r.w {
					if r.buf[r.r] == '\n' {
						r.r++
					}
				} else {
					r.skipLF = true
				}
			}
			return r.first(line), nil
		}
		r.scanned = r.w - r.r
		if r.err != nil {
			line := r.buf[r.r:r.w]
			r.r, r.w, r.scanned = 0, 0, 0
			if r.err == io.EOF && r.DispatchAtEOF && len(line) > 0 {
				return r.first(line), nil
			}
			return nil, r.err
		}
		r.fill()
	}
}

// first skips the byte order mark at the very start of the stream.
func (r *Reader) first(line []byte) []byte {
	if !r.started {
		r.started = true
		line = bytes.TrimPrefix(line, []byte("\xEF\xBB\xBF"))
	}
	return line
}

// fill reads more of the source into the buffer, moving the unread bytes
// to its start and growing it (up to limit+1 bytes) when a line fills it.
// A line that does not fit in limit+1 bytes sets the too-long error.
func (r *Reader) fill() {
	if r.buf == nil {
		r.buf = make([]byte, min(initialBuffer, r.limit+1))
	}
	if r.r > 0 {
		copy(r.buf, r.buf[r.r:r.w])
		r.w -= r.r
		r.r = 0
	}
	if r.w == len(r.buf) {
		if len(r.buf) > r.limit {
			r.err, r.r, r.w, r.scanned = fmt.Errorf("%w: a line over %d bytes", ErrTooLong, r.limit), 0, 0, 0
			return
		}
		grown := make([]byte, min(2*len(r.buf), r.limit+1))
		copy(grown, r.buf[:r.w])
		r.buf = grown
	}
	for range 100 {
		n, err := r.src.Read(r.buf[r.w:])
		if n < 0 || n > len(r.buf)-r.w {
			r.err = errors.New("sse: the source returned an impossible read count")
			return
		}
		r.w += n
		if err != nil {
			r.err = err
			return
		}
		if n > 0 {
			return
		}
	}
	r.err = io.ErrNoProgress
}

// lineEnd returns the index of the first CR or LF in b, or -1.
func lineEnd(b []byte) int {
	lf := bytes.IndexByte(b, '\n')
	head := b
	if lf >= 0 {
		head = b[:lf]
	}
	if cr := bytes.IndexByte(head, '\r'); cr >= 0 {
		return cr
	}
	return lf
}

// reserve makes room in b for n more bytes, growing its memory to at most
// most bytes; the caller has checked that len(b)+n <= most.
func reserve(b []byte, n, most int) []byte {
	need := len(b) + n
	if need <= cap(b) {
		return b
	}
	grown := make([]byte, len(b), min(most, max(need, 2*cap(b))))
	copy(grown, b)
	return grown
}

// parseDigits reads a retry value: ASCII digits only, at least one, as
// milliseconds; a value too large for a time.Duration is capped.
func parseDigits(b []byte) (int64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	const most = math.MaxInt64 / int64(time.Millisecond)
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		if n <= most {
			n = n*10 + int64(c-'0')
		}
	}
	return min(n, most), true
}
