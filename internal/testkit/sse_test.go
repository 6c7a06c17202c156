package testkit_test

import (
	"strings"
	"testing"

	"github.com/agentos/agentos/internal/testkit"
)

func TestReadSSE_FramesCommentsAndEnvelopes(t *testing.T) {
	stream := ": ping\n\n" +
		"id: 1\nevent: agentos.event\ndata: {\"event\":{\"sequence\":1,\"type\":\"agentos.run.created\"}}\n\n" +
		": ping\n" +
		"id: 2\nevent: agentos.event\ndata: {\"event\":\n" + "data: {\"sequence\":2,\"type\":\"agentos.run.completed\"}}\n\n" +
		"data: not json\n\n"
	msgs, comments, err := testkit.ReadSSE(strings.NewReader(stream), nil)
	if err != nil || comments != 2 || len(msgs) != 3 {
		t.Fatalf("msgs %d comments %d err %v", len(msgs), comments, err)
	}
	if msgs[0].ID != "1" || msgs[0].Name != "agentos.event" || msgs[0].Event.Type != "agentos.run.created" {
		t.Fatalf("first %+v", msgs[0])
	}
	if msgs[1].Event.Sequence != 2 || msgs[1].Data != "{\"event\":\n{\"sequence\":2,\"type\":\"agentos.run.completed\"}}" {
		t.Fatalf("multi-line data %+v", msgs[1])
	}
	if msgs[2].Data != "not json" || msgs[2].Event.Type != "" {
		t.Fatalf("plain data %+v", msgs[2])
	}
	if err := testkit.Gapless(msgs[:2], 0); err != nil {
		t.Fatal(err)
	}
	if err := testkit.Gapless(msgs[1:2], 0); err == nil {
		t.Fatal("a stream starting at 2 after 0 is not gapless")
	}
	stopped, _, _ := testkit.ReadSSE(strings.NewReader(stream), func(testkit.SSE) bool { return false })
	if len(stopped) != 1 {
		t.Fatalf("each returning false stops after the first message, got %d", len(stopped))
	}
}
