package conformance_test

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/agentos/agentos/examples"
	"github.com/agentos/agentos/openapi"
)

var pathParam = regexp.MustCompile(`\{[^}/]+\}`)

// concretePath fills a path template with sample values, so a synthetic
// request reaches the operation through the validator's own routing.
func concretePath(template string) string {
	return pathParam.ReplaceAllString(template, "x1")
}

// TestExamples_ValidAgainstOpenAPI proves every golden example against the
// schema of its operation: requests through ValidateRequest on a synthetic
// http.Request (routing included), responses against the operation's
// response schema for the example's status.
func TestExamples_ValidAgainstOpenAPI(t *testing.T) {
	if err := examples.Err(); err != nil {
		t.Fatal(err)
	}
	for _, stack := range openapi.Stacks() {
		v, err := openapi.NewValidator(stack)
		if err != nil {
			t.Fatal(err)
		}
		ops := map[string]openapi.Operation{}
		for _, o := range v.Operations() {
			ops[o.OperationID] = o
		}
		for _, e := range examples.Index(stack) {
			t.Run(stack+"/"+e.Name, func(t *testing.T) {
				op, ok := ops[e.OperationID]
				if !ok {
					t.Fatalf("example %s names operation %s, which %s.yaml does not have", e.Name, e.OperationID, stack)
				}
				if op.Method != e.Method || op.Path != e.Path {
					t.Fatalf("index says %s %s, the document says %s %s for %s", e.Method, e.Path, op.Method, op.Path, e.OperationID)
				}
				body, ok := examples.Get(e.Name)
				if !ok {
					t.Fatalf("no file examples/%s.json", e.Name)
				}
				switch e.Kind {
				case examples.KindRequest:
					if !v.HasRequestBody(e.OperationID) {
						t.Fatalf("%s takes no JSON body, but %s is a request example", e.OperationID, e.Name)
					}
					r := httptest.NewRequest(e.Method, concretePath(e.Path), strings.NewReader(string(body)))
					r.Header.Set("Content-Type", "application/json")
					if got, _ := v.Match(r.Method, r.URL.Path); got.OperationID != e.OperationID {
						t.Fatalf("%s %s routes to %q, want %s", r.Method, r.URL.Path, got.OperationID, e.OperationID)
					}
					if fe := v.ValidateRequest(r); fe != nil {
						t.Fatalf("request example %s does not fit %s: field %q: %s", e.Name, e.OperationID, fe.Field, fe.Message)
					}
				case examples.KindResponse:
					if err := v.ValidateResponseBody(e.OperationID, e.Status, "application/json", body); err != nil {
						t.Fatalf("response example %s does not fit %s: %v", e.Name, e.OperationID, err)
					}
				default:
					t.Fatalf("example %s has kind %q", e.Name, e.Kind)
				}
			})
		}
	}
}

// TestExamples_CoverEveryOperation: every operation with a JSON request
// body has a request example, and every documented 2xx status with a JSON
// body has a response example, so the golden set shows the whole contract.
func TestExamples_CoverEveryOperation(t *testing.T) {
	for _, stack := range openapi.Stacks() {
		v, err := openapi.NewValidator(stack)
		if err != nil {
			t.Fatal(err)
		}
		have := map[string]bool{}
		for _, e := range examples.Index(stack) {
			have[e.OperationID+" "+e.Kind+" "+strconv.Itoa(e.Status)] = true
			have[e.OperationID+" "+e.Kind] = true
		}
		for _, o := range v.Operations() {
			if v.HasRequestBody(o.OperationID) && !have[o.OperationID+" request"] {
				t.Errorf("%s: %s (%s %s) has a JSON request body but no request example", stack, o.OperationID, o.Method, o.Path)
			}
			jsonAnswers := 0
			for _, s := range v.ResponseStatuses(o.OperationID) {
				code, err := strconv.Atoi(s)
				if err != nil {
					continue
				}
				if !hasJSON(v.ResponseMediaTypes(o.OperationID, code)) {
					continue
				}
				jsonAnswers++
				if code >= 200 && code < 300 && !have[o.OperationID+" response "+s] {
					t.Errorf("%s: %s (%s %s) documents %d application/json but has no %s.response.%d example", stack, o.OperationID, o.Method, o.Path, code, o.OperationID, code)
				}
			}
			if jsonAnswers > 0 && !have[o.OperationID+" response"] {
				t.Errorf("%s: %s has no response example", stack, o.OperationID)
			}
		}
	}
}

func hasJSON(media []string) bool {
	for _, m := range media {
		if m == "application/json" {
			return true
		}
	}
	return false
}

// TestExamples_NoOrphanFiles: every JSON file in examples/ is in the index.
func TestExamples_NoOrphanFiles(t *testing.T) {
	listed := map[string]bool{"index": true}
	for _, stack := range openapi.Stacks() {
		for _, e := range examples.Index(stack) {
			listed[e.Name] = true
		}
	}
	files, err := filepath.Glob(filepath.Join("..", "examples", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no example files found in ../examples")
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		if !listed[name] {
			t.Errorf("examples/%s.json is not in examples/index.json", name)
		}
	}
	if _, err := os.Stat(filepath.Join("..", "examples", "index.json")); err != nil {
		t.Fatal(err)
	}
}
