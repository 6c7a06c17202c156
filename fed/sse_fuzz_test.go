package fed

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http/httptest"
	"testing"
)

// FuzzSSEReader feeds arbitrary bytes to the relay's SSE decoder: it must
// never panic, and whatever it decodes must survive our own encoding and
// decode back to the same event.
func FuzzSSEReader(f *testing.F) {
	f.Add([]byte("id: 1\nevent: agentos.event\ndata: {\"event\":{\"event_id\":\"evt_1\",\"sequence\":1,\"type\":\"agentos.run.created\"}}\n\n"))
	f.Add([]byte(": ping\n\ndata: {\"event_id\":\"evt_2\",\"sequence\":2}\n\n"))
	f.Add([]byte("event: other\ndata: {}\n\ndata: {\"event\":\ndata: {}}\n\n"))
	f.Add([]byte("data: not json\n\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		rd := newSSEReader(bytes.NewReader(in))
		for i := 0; i < 100; i++ {
			ev, err := rd.next()
			if errors.Is(err, io.EOF) || (err != nil && !isDecodeErr(err)) {
				return
			}
			if err != nil {
				continue
			}
			rec := httptest.NewRecorder()
			if err := newSSEWriter(rec).event(ev); err != nil {
				t.Fatalf("encode decoded event: %v", err)
			}
			back, err := newSSEReader(rec.Body).next()
			if err != nil {
				t.Fatalf("re-read own encoding: %v", err)
			}
			a, _ := json.Marshal(ev)
			b, _ := json.Marshal(back)
			if !bytes.Equal(a, b) {
				t.Fatalf("round trip changed the event:\n%s\n%s", a, b)
			}
		}
	})
}

func isDecodeErr(err error) bool {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	return errors.As(err, &se) || errors.As(err, &te) || bytes.Contains([]byte(err.Error()), []byte("decode event"))
}

func TestSSEReader_SkipsCommentsAndOtherEvents(t *testing.T) {
	in := ": ping\n\nevent: other\ndata: {\"event\":{\"event_id\":\"evt_x\"}}\n\n" +
		"id: 3\r\nevent: agentos.event\r\ndata: {\"event\":{\"event_id\":\"evt_3\",\"sequence\":3,\"tenant_id\":\"tnt_a\"}}\r\n\r\n"
	rd := newSSEReader(bytes.NewReader([]byte(in)))
	ev, err := rd.next()
	if err != nil || ev.EventID != "evt_3" || ev.Sequence != 3 || ev.TenantID != "tnt_a" {
		t.Fatalf("got %+v %v", ev, err)
	}
	if _, err := rd.next(); !errors.Is(err, io.EOF) {
		t.Fatalf("want EOF, got %v", err)
	}
}
