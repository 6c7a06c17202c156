package conformance_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentos/agentos/openapi"
)

// The drift gate: openapi/baseline/ holds the published contract's
// documents. /v1 is additive-only, so the current documents may add
// optional fields and new paths but never break a client of the baseline.
// To publish an additive change, copy openapi/<stack>.yaml over
// openapi/baseline/<stack>.yaml in the same commit.

func mustBaseline(t *testing.T, stack string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "openapi", "baseline", stack+".yaml"))
	if err != nil {
		t.Fatalf("baseline of %s: %v", stack, err)
	}
	return b
}

func mustDocument(t *testing.T, stack string) []byte {
	t.Helper()
	b, err := openapi.Document(stack)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDrift_NoBreakingChangeAgainstBaseline(t *testing.T) {
	for _, stack := range openapi.Stacks() {
		t.Run(stack, func(t *testing.T) {
			breaking, err := openapi.BreakingChanges(mustBaseline(t, stack), mustDocument(t, stack))
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range breaking {
				t.Errorf("breaking change in openapi/%s.yaml against the published baseline: %s", stack, b)
			}
		})
	}
}

// edit applies one textual change to a document and fails the test when
// the anchor text is not there (so the gate test cannot pass vacuously).
func edit(t *testing.T, doc []byte, old, new string) []byte {
	t.Helper()
	s := string(doc)
	if strings.Count(s, old) != 1 {
		t.Fatalf("anchor %q found %d times, want 1", old, strings.Count(s, old))
	}
	return []byte(strings.Replace(s, old, new, 1))
}

// removePath cuts one path item (its key line and everything indented
// under it) out of a document.
func removePath(t *testing.T, doc []byte, path string) []byte {
	t.Helper()
	lines := strings.Split(string(doc), "\n")
	start := -1
	for i, l := range lines {
		if l == "  "+path+":" {
			start = i
			break
		}
	}
	if start < 0 {
		t.Fatalf("path %s not in document", path)
	}
	end := start + 1
	for end < len(lines) && (strings.HasPrefix(lines[end], "    ") || lines[end] == "") {
		end++
	}
	return []byte(strings.Join(append(lines[:start:start], lines[end:]...), "\n"))
}

func TestDrift_GateCatchesBreakingChanges(t *testing.T) {
	base := mustDocument(t, openapi.StackA)
	cases := []struct {
		name    string
		current []byte
	}{
		{"removed path", removePath(t, base, "/v1/audit")},
		{"new required field", edit(t, base,
			"    RunCreateRequest:\n      type: object\n      required: [input]\n",
			"    RunCreateRequest:\n      type: object\n      required: [input, context]\n")},
		{"removed response field", edit(t, base,
			"        events_url: {type: string, description: '`/v1/runs/{run_id}/events`.'}\n", "")},
		{"changed type", edit(t, base,
			"        sequence: {type: integer, minimum: 1,", "        sequence: {type: string,")},
		{"removed operation", edit(t, base, "    delete:\n      operationId: revokeToken\n", "    x-removed:\n      operationId: revokeToken\n")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			breaking, err := openapi.BreakingChanges(base, c.current)
			if err != nil {
				t.Fatal(err)
			}
			if len(breaking) == 0 {
				t.Fatalf("%s: the gate reported no breaking change", c.name)
			}
			t.Logf("%s: %s", c.name, strings.Join(breaking, "; "))
		})
	}
}

func TestDrift_GateLetsAdditiveChangesThrough(t *testing.T) {
	base := mustDocument(t, openapi.StackA)
	additive := edit(t, base,
		"        traceparent: {type: string, description: Wins over the traceparent header.}\n    RunSummary:\n",
		"        traceparent: {type: string, description: Wins over the traceparent header.}\n"+
			"        labels_v2: {type: object, description: A new optional field.}\n    RunSummary:\n")
	additive = edit(t, additive, "components:\n  securitySchemes:\n", `  /v1/runs/{run_id}/steps:
    get:
      operationId: listRunSteps
      summary: A new endpoint.
      parameters:
        - {$ref: '#/components/parameters/RunIdPath'}
      responses:
        '200':
          description: The steps.
          content:
            application/json:
              schema:
                type: object
                required: [steps, correlation_id]
                properties:
                  steps: {type: array, items: {type: object}}
                  correlation_id: {$ref: '#/components/schemas/CorrelationId'}
        '404': {$ref: '#/components/responses/NotFound'}
components:
  securitySchemes:
`)
	breaking, err := openapi.BreakingChanges(base, additive)
	if err != nil {
		t.Fatal(err)
	}
	if len(breaking) > 0 {
		t.Fatalf("additive changes were reported breaking: %s", strings.Join(breaking, "; "))
	}
}
