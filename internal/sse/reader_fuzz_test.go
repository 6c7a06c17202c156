package sse

import (
	"errors"
	"io"
	"strings"
	"testing"
)

// FuzzReader feeds arbitrary bytes, limits and read sizes to a Reader: it
// must never panic, never hold more memory than its limit allows, end
// with io.EOF or ErrTooLong, and, below the limit, frame exactly the
// events a line-by-line reading of the standard's rules does.
func FuzzReader(f *testing.F) {
	f.Add([]byte("id: 1\nevent: agentos.event\ndata: {\"event\":{}}\n\n"), uint16(64), false, uint8(0))
	f.Add([]byte(": ping\r\n\r\ndata: a\rdata: b\r\r"), uint16(8), true, uint8(1))
	f.Add([]byte("\xEF\xBB\xBFdata\nid: 1\x002\nretry: 10\nevent\n\ndata: tail"), uint16(5), true, uint8(3))
	f.Add([]byte("data: "+strings.Repeat("x", 300)+"\n\n"), uint16(200), false, uint8(17))
	f.Fuzz(func(t *testing.T, in []byte, limit uint16, atEOF bool, chunk uint8) {
		lim := int(limit)%1024 + 1
		var src io.Reader = strings.NewReader(string(in))
		if chunk > 0 {
			src = &fuzzChunks{b: in, n: int(chunk)}
		}
		rd := NewReader(src, lim)
		rd.DispatchAtEOF = atEOF
		want, wantComments := reference(string(in), atEOF)
		var got []string
		for i := 0; ; i++ {
			if i > len(in)+1 {
				t.Fatalf("more events than bytes")
			}
			ev, err := rd.Next()
			if cap(rd.buf) > lim+1 || cap(rd.data) > lim+1 || cap(rd.name) > lim || cap(rd.id) > lim {
				t.Fatalf("limit %d: buffers grew to %d, %d, %d, %d", lim, cap(rd.buf), cap(rd.data), cap(rd.name), cap(rd.id))
			}
			if err == io.EOF {
				if strings.Join(got, "|") != strings.Join(want, "|") || rd.Comments() != wantComments {
					t.Fatalf("events %q (%d comments), the rules say %q (%d)", got, rd.Comments(), want, wantComments)
				}
				return
			}
			if errors.Is(err, ErrTooLong) {
				if len(got) > len(want) || strings.Join(got, "|") != strings.Join(want[:len(got)], "|") {
					t.Fatalf("before the limit: events %q, the rules say %q", got, want)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if len(ev.Data) > lim || len(ev.Name) > lim || len(ev.ID) > lim {
				t.Fatalf("limit %d: an event of %d/%d/%d bytes", lim, len(ev.Data), len(ev.Name), len(ev.ID))
			}
			got = append(got, string(ev.ID)+"/"+string(ev.Name)+"/"+string(ev.Data))
		}
	})
}

type fuzzChunks struct {
	b []byte
	n int
}

func (c *fuzzChunks) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.n)], c.b)
	c.b = c.b[n:]
	return n, nil
}

// reference reads a stream by the standard's rules the plainest way:
// split into lines, then apply each; events come out as "id/name/data".
func reference(in string, atEOF bool) (evs []string, comments int) {
	in = strings.TrimPrefix(in, "\uFEFF")
	var lines []string
	for {
		i := strings.IndexAny(in, "\r\n")
		if i < 0 {
			break
		}
		lines = append(lines, in[:i])
		if in[i] == '\r' && i+1 < len(in) && in[i+1] == '\n' {
			i++
		}
		in = in[i+1:]
	}
	if atEOF && in != "" {
		lines = append(lines, in)
	}
	var id, name string
	var data []string
	for _, l := range lines {
		if l == "" {
			if data != nil {
				evs = append(evs, id+"/"+name+"/"+strings.Join(data, "\n"))
			}
			name, data = "", nil
			continue
		}
		if l[0] == ':' {
			comments++
			continue
		}
		field, value, _ := strings.Cut(l, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "data":
			data = append(data, value)
		case "event":
			name = value
		case "id":
			if !strings.Contains(value, "\x00") {
				id = value
			}
		}
	}
	if atEOF && data != nil {
		evs = append(evs, id+"/"+name+"/"+strings.Join(data, "\n"))
	}
	return evs, comments
}
