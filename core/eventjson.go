package core

import (
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendJSON appends ev's JSON to b: the same bytes as json.Marshal(ev),
// written field by field instead of by reflection, because every event is
// encoded once to be stored and once more as an SSE frame. The payload is
// copied as it is when it is already compact and HTML-escaped (as
// json.Marshal produces it, and as stored events decode), and goes through
// encoding/json otherwise; it is trusted to be valid JSON, as it comes from
// json.Marshal or from the store.
func (ev *Event) AppendJSON(b []byte) ([]byte, error) { return ev.appendJSON(b, false) }

// AppendRelativeJSON appends ev's JSON without the fields its run holds
// once for all of its events: sequence, tenant_id, agent_id, run_id and
// trace.traceparent, about a third of an event's bytes. A store that keeps
// events this way keeps those fields in the run (and the event's key) and
// puts them back when it reads the event; the absence of tenant_id is what
// tells such an event from a whole one. What remains is written as
// AppendJSON writes it, in the same order.
func (ev *Event) AppendRelativeJSON(b []byte) ([]byte, error) { return ev.appendJSON(b, true) }

// appendJSON writes the event's fields in json.Marshal's order, leaving
// out the run's fields when relative.
func (ev *Event) appendJSON(b []byte, relative bool) ([]byte, error) {
	b = append(b, `{"event_id":`...)
	b = appendJSONString(b, ev.EventID)
	if !relative {
		b = append(b, `,"sequence":`...)
		b = strconv.AppendInt(b, ev.Sequence, 10)
	}
	b = append(b, `,"time":`...)
	b, err := appendTime(b, ev.Time)
	if err != nil {
		return b, err
	}
	b = append(b, `,"type":`...)
	b = appendJSONString(b, ev.Type)
	if !relative {
		b = append(b, `,"tenant_id":`...)
		b = appendJSONString(b, ev.TenantID)
		b = append(b, `,"agent_id":`...)
		b = appendJSONString(b, ev.AgentID)
		b = append(b, `,"run_id":`...)
		b = appendJSONString(b, ev.RunID)
	}
	if ev.StepID != nil {
		b = append(b, `,"step_id":`...)
		b = appendJSONString(b, *ev.StepID)
	}
	b = append(b, `,"trace":{`...)
	comma := false
	if !relative && ev.Trace.Traceparent != "" {
		b = append(b, `"traceparent":`...)
		b = appendJSONString(b, ev.Trace.Traceparent)
		comma = true
	}
	if ev.Trace.SpanID != "" {
		if comma {
			b = append(b, ',')
		}
		b = append(b, `"span_id":`...)
		b = appendJSONString(b, ev.Trace.SpanID)
	}
	b = append(b, `},"payload":`...)
	return appendPayload(b, ev.Payload)
}

// appendTime appends t as encoding/json writes a time.Time.
func appendTime(b []byte, t time.Time) ([]byte, error) {
	if y := t.Year(); y < 0 || y > 9999 {
		raw, err := json.Marshal(t)
		if err != nil {
			return b, err
		}
		return append(b, raw...), nil
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), nil
}

// appendPayload appends an event's payload and the closing brace of the
// event.
func appendPayload(b []byte, p json.RawMessage) ([]byte, error) {
	switch {
	case len(p) == 0:
		b = append(b, "null"...)
	case canonicalJSON(p):
		b = append(b, p...)
	default:
		raw, err := json.Marshal(p)
		if err != nil {
			return b, err
		}
		b = append(b, raw...)
	}
	return append(b, '}'), nil
}

// canonicalJSON reports whether valid JSON p is as encoding/json writes
// it: no whitespace between tokens, and no '<', '>', '&', U+2028 or U+2029
// left unescaped in strings.
func canonicalJSON(p []byte) bool {
	inString := false
	for i := 0; i < len(p); i++ {
		c := p[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			case '<', '>', '&':
				return false
			case 0xE2:
				if i+2 < len(p) && p[i+1] == 0x80 && (p[i+2] == 0xA8 || p[i+2] == 0xA9) {
					return false
				}
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case ' ', '\t', '\n', '\r':
			return false
		}
	}
	return !inString
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as encoding/json writes a string: quoted,
// with HTML characters, control characters, U+2028/U+2029 escaped and
// invalid UTF-8 replaced by U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
