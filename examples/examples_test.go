package examples_test

import (
	"encoding/json"
	"testing"

	"github.com/agentos/agentos/examples"
)

func TestIndex_EveryEntryHasAValidFile(t *testing.T) {
	if err := examples.Err(); err != nil {
		t.Fatal(err)
	}
	for _, stack := range []string{"stack-a", "stack-b", "federation"} {
		entries := examples.Index(stack)
		if len(entries) == 0 {
			t.Errorf("%s: no examples", stack)
		}
		seen := map[string]bool{}
		for _, e := range entries {
			if seen[e.Name] {
				t.Errorf("%s: %s listed twice", stack, e.Name)
			}
			seen[e.Name] = true
			if e.Stack != stack || e.OperationID == "" || e.Method == "" || e.Path == "" {
				t.Errorf("%s: incomplete entry %+v", stack, e)
			}
			switch {
			case e.Kind == examples.KindRequest && e.Status == 0:
			case e.Kind == examples.KindResponse && e.Status >= 100 && e.Status < 600:
			default:
				t.Errorf("%s: %s: kind %q with status %d", stack, e.Name, e.Kind, e.Status)
			}
			b, ok := examples.Get(e.Name)
			if !ok {
				t.Errorf("%s: %s has no file", stack, e.Name)
				continue
			}
			if !json.Valid(b) {
				t.Errorf("%s: %s is not JSON", stack, e.Name)
			}
		}
	}
	if examples.Index("stack-z") != nil {
		t.Error("unknown stack: want nil")
	}
	if _, ok := examples.Get("index"); ok {
		t.Error("the index is not an example")
	}
	if _, ok := examples.Get("../go"); ok {
		t.Error("path escape must fail")
	}
}

func TestEntry_JSONIsTheServedIndexShape(t *testing.T) {
	b, err := json.Marshal(examples.Entry{Name: "createRun.response.201", OperationID: "createRun", Kind: "response", Status: 201, Stack: "stack-a"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"name":"createRun.response.201","operation_id":"createRun","kind":"response","status":201}`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
