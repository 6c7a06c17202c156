package sse_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/agentos/agentos/internal/sse"
)

// event is an sse.Event copied out of the reader's buffers.
type event struct{ id, name, data string }

// readAll reads every event of in, fed to the reader chunk bytes at a time
// (0: all at once), and returns them with the comment count and the error
// that ended the stream.
func readAll(t *testing.T, in string, limit int, atEOF bool, chunk int) ([]event, int, error) {
	t.Helper()
	var src io.Reader = strings.NewReader(in)
	if chunk > 0 {
		src = &chunkReader{s: in, n: chunk}
	}
	rd := sse.NewReader(src, limit)
	rd.DispatchAtEOF = atEOF
	var evs []event
	for range len(in) + 2 {
		ev, err := rd.Next()
		if err != nil {
			if _, again := rd.Next(); again != err {
				t.Fatalf("after %v, Next returned %v", err, again)
			}
			return evs, rd.Comments(), err
		}
		evs = append(evs, event{string(ev.ID), string(ev.Name), string(ev.Data)})
	}
	t.Fatalf("more events than bytes in %q", in)
	return nil, 0, nil
}

// chunkReader hands out s at most n bytes per Read.
type chunkReader struct {
	s string
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if c.s == "" {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.n)], c.s)
	c.s = c.s[n:]
	return n, nil
}

func TestReader_Framing(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		limit    int  // 0: 1 KiB
		atEOF    bool // Reader.DispatchAtEOF
		want     []event
		comments int
		err      error // what ends the stream; nil: io.EOF
	}{
		{name: "LF", in: "id: 1\nevent: agentos.event\ndata: {}\n\n",
			want: []event{{"1", "agentos.event", "{}"}}},
		{name: "CRLF", in: "id: 1\r\nevent: x\r\ndata: a\r\ndata: b\r\n\r\n",
			want: []event{{"1", "x", "a\nb"}}},
		{name: "CR", in: "event: x\rdata: a\rdata: b\r\rdata: c\r\r",
			want: []event{{"", "x", "a\nb"}, {"", "", "c"}}},
		{name: "mixed line ends", in: "data: a\r\ndata: b\rdata: c\n\r\n",
			want: []event{{"", "", "a\nb\nc"}}},
		{name: "comments are counted and skipped", in: ": ping\n\n:\ndata: a\n: between\n\n",
			want: []event{{"", "", "a"}}, comments: 3},
		{name: "multi-line data keeps inner blanks and spaces", in: "data: a\ndata:\ndata:  b\ndata\n\n",
			want: []event{{"", "", "a\n\n b\n"}}},
		{name: "an empty data line is an event", in: "data:\n\ndata\n\n",
			want: []event{{"", "", ""}, {"", "", ""}}},
		{name: "no space after the colon", in: "event:x\ndata:a\n\n",
			want: []event{{"", "x", "a"}}},
		{name: "only one leading space goes", in: "event:  x \ndata:\ta\n\n",
			want: []event{{"", " x ", "\ta"}}},
		{name: "a field without colon has an empty value", in: "event: x\nevent\ndata: a\n\n",
			want: []event{{"", "", "a"}}},
		{name: "a blank line without data resets the name", in: "event: x\n\ndata: a\n\n",
			want: []event{{"", "", "a"}}},
		{name: "the name resets after each event", in: "event: x\ndata: a\n\ndata: b\n\n",
			want: []event{{"", "x", "a"}, {"", "", "b"}}},
		{name: "the id persists until changed", in: "id: 1\ndata: a\n\ndata: b\n\nid: 2\n\ndata: c\n\nid\ndata: d\n\n",
			want: []event{{"1", "", "a"}, {"1", "", "b"}, {"2", "", "c"}, {"", "", "d"}}},
		{name: "an id holding NUL is ignored", in: "id: 7\ndata: a\n\nid: 8\x009\ndata: b\n\n",
			want: []event{{"7", "", "a"}, {"7", "", "b"}}},
		{name: "unknown fields are ignored", in: "foo: bar\nretry: x\nData: no\ndata: a\n\n",
			want: []event{{"", "", "a"}}},
		{name: "a leading byte order mark is skipped once", in: "\xEF\xBB\xBFdata: a\n\n\xEF\xBB\xBFdata: b\n\n",
			want: []event{{"", "", "a"}}},
		{name: "empty stream", in: ""},
		{name: "only comments and blanks", in: ": ping\n\n\n\r\n", comments: 1},

		{name: "stream ends mid-event: discarded", in: "data: a\n\nevent: x\ndata: b\n",
			want: []event{{"", "", "a"}}},
		{name: "stream ends mid-event: dispatched at EOF", in: "data: a\n\nevent: x\ndata: b\n", atEOF: true,
			want: []event{{"", "", "a"}, {"", "x", "b"}}},
		{name: "last line without line end: discarded", in: "data: a\n\ndata: b",
			want: []event{{"", "", "a"}}},
		{name: "last line without line end: dispatched at EOF", in: "data: a\n\ndata: b", atEOF: true,
			want: []event{{"", "", "a"}, {"", "", "b"}}},
		{name: "stream ends after a name only", in: "data: a\n\nevent: x\n", atEOF: true,
			want: []event{{"", "", "a"}}},
		{name: "stream ends in a CR", in: "data: a\r", atEOF: true,
			want: []event{{"", "", "a"}}},

		{name: "a line of exactly the limit", in: "data: ab\n\n", limit: 8,
			want: []event{{"", "", "ab"}}},
		{name: "a line of exactly the limit, CRLF", in: "data: ab\r\n\r\n", limit: 8,
			want: []event{{"", "", "ab"}}},
		{name: "a line over the limit", in: "data: a\n\ndata: abc\n\ndata: b\n\n", limit: 8,
			want: []event{{"", "", "a"}}, err: sse.ErrTooLong},
		{name: "a comment over the limit", in: ": 12345678\ndata: a\n\n", limit: 8, err: sse.ErrTooLong},
		{name: "a last line over the limit", in: "data: abc", limit: 8, atEOF: true, err: sse.ErrTooLong},
		{name: "data of exactly the limit", in: "data: 1234\ndata: 12345\n\n", limit: 11,
			want: []event{{"", "", "1234\n12345"}}},
		{name: "data over the limit across lines", in: "data: 1234\ndata: 1234\ndata: 12\n\ndata: a\n\n", limit: 11,
			err: sse.ErrTooLong},
	}
	for _, tt := range tests {
		limit := tt.limit
		if limit == 0 {
			limit = 1 << 10
		}
		for _, chunk := range []int{0, 1, 2, 3, 7} {
			evs, comments, err := readAll(t, tt.in, limit, tt.atEOF, chunk)
			want := tt.err
			if want == nil {
				want = io.EOF
			}
			if !errors.Is(err, want) {
				t.Errorf("%s (chunks of %d): ended with %v, want %v", tt.name, chunk, err, want)
			}
			if !equal(evs, tt.want) || comments != tt.comments {
				t.Errorf("%s (chunks of %d): events %q comments %d, want %q comments %d", tt.name, chunk, evs, comments, tt.want, tt.comments)
			}
		}
	}
}

func equal(a, b []event) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestReader_TooLongSaysTheLimit(t *testing.T) {
	rd := sse.NewReader(strings.NewReader("data: "+strings.Repeat("x", 100)+"\n\n"), 64)
	_, err := rd.Next()
	if !errors.Is(err, sse.ErrTooLong) || !strings.Contains(err.Error(), "64 bytes") {
		t.Fatalf("err = %v, want ErrTooLong naming 64 bytes", err)
	}
}

// A long line grows the buffer past its first size and still frames.
func TestReader_LongLinesGrowTheBuffer(t *testing.T) {
	big := strings.Repeat("x", 100<<10)
	in := "data: " + big + "\r\ndata: " + big + "\r\n\r\ndata: small\n\n"
	evs, _, err := readAll(t, in, 256<<10, false, 0)
	if err != io.EOF || len(evs) != 2 || evs[0].data != big+"\n"+big || evs[1].data != "small" {
		t.Fatalf("%d events, %v", len(evs), err)
	}
	if _, _, err := readAll(t, in, 150<<10, false, 4096); !errors.Is(err, sse.ErrTooLong) {
		t.Fatalf("200 KiB of data under a 150 KiB limit: %v", err)
	}
}

func TestReader_SourceErrorAfterTheEvents(t *testing.T) {
	boom := errors.New("connection reset")
	src := io.MultiReader(strings.NewReader("data: a\n\ndata: b\n"), iotest.ErrReader(boom))
	rd := sse.NewReader(src, 1<<10)
	rd.DispatchAtEOF = true // only io.EOF dispatches a pending event, never another error
	ev, err := rd.Next()
	if err != nil || string(ev.Data) != "a" {
		t.Fatalf("first: %q %v", ev.Data, err)
	}
	if _, err := rd.Next(); err != boom {
		t.Fatalf("second: %v, want the source's error", err)
	}
}

func TestReader_Retry(t *testing.T) {
	rd := sse.NewReader(strings.NewReader("retry: 1500\ndata: a\n\nretry: 2s\ndata: b\n\nretry: 99999999999999999999999\n\n"), 1<<10)
	if _, ok := rd.Retry(); ok {
		t.Fatal("retry before any field")
	}
	rd.Next()
	if d, ok := rd.Retry(); !ok || d != 1500*time.Millisecond {
		t.Fatalf("retry %v %v", d, ok)
	}
	rd.Next()
	if d, _ := rd.Retry(); d != 1500*time.Millisecond {
		t.Fatalf("a retry that is not digits changed it: %v", d)
	}
	rd.Next()
	if d, _ := rd.Retry(); d <= 0 {
		t.Fatalf("a huge retry overflowed: %v", d)
	}
}

// Buffered is zero once an event's blank line is consumed and nothing
// follows, whatever the line ends: a relay flushes on it, so a CRLF
// stream must not leave its LF behind.
func TestReader_BufferedAfterAnEvent(t *testing.T) {
	for _, in := range []string{"data: a\n\n", "data: a\r\n\r\n", "data: a\r\r"} {
		rd := sse.NewReader(strings.NewReader(in), 1<<10)
		if _, err := rd.Next(); err != nil {
			t.Fatal(err)
		}
		if n := rd.Buffered(); n != 0 {
			t.Errorf("%q: %d bytes buffered after its only event", in, n)
		}
	}
	rd := sse.NewReader(strings.NewReader("data: a\n\ndata: b\n\n"), 1<<10)
	rd.Next()
	if rd.Buffered() == 0 {
		t.Error("the second event is buffered but Buffered says 0")
	}
}

// repeatReader serves the same bytes forever.
type repeatReader struct {
	b   []byte
	off int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.b[r.off:])
		n += c
		r.off = (r.off + c) % len(r.b)
	}
	return n, nil
}

// Reading costs no allocation per event once the buffers have grown.
func TestReader_NoAllocationsPerEvent(t *testing.T) {
	rd := sse.NewReader(&repeatReader{b: []byte(relayEvent)}, 1<<20)
	for range 100 {
		rd.Next()
	}
	if n := testing.AllocsPerRun(1000, func() {
		if ev, err := rd.Next(); err != nil || len(ev.Data) == 0 {
			t.Fatal(ev, err)
		}
	}); n != 0 {
		t.Fatalf("%v allocations per event", n)
	}
}

// relayEvent is one run event as the federation relay reads it.
const relayEvent = "id: 42\nevent: agentos.event\ndata: {\"event\":{\"event_id\":\"evt_42\",\"sequence\":42,\"time\":\"2023-11-14T22:13:20Z\"," +
	"\"type\":\"agentos.step.completed\",\"tenant_id\":\"tnt_demo\",\"agent_id\":\"agt_sample_echo_v1\",\"run_id\":\"run_01HZX\"," +
	"\"step_id\":\"stp_01\",\"trace\":{\"span_id\":\"b7ad6b7169203331\"},\"payload\":{\"output\":{\"type\":\"text\",\"text\":\"an answer\"}}}}\n\n"

// BenchmarkReader_RunEvents frames run events as the relay reads them
// (no decoding): the reader's own cost per event.
func BenchmarkReader_RunEvents(b *testing.B) {
	in := bytes.Repeat([]byte(relayEvent+": ping\n\n"), 1000)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		rd := sse.NewReader(bytes.NewReader(in), 4<<20)
		n := 0
		for {
			if _, err := rd.Next(); err != nil {
				break
			}
			n++
		}
		if n != 1000 {
			b.Fatal(n)
		}
	}
}
