package openapi

import (
	"errors"
	"testing"
	"time"

	"github.com/pb33f/jsonschema/v6"
)

// A node compiles a request body's schema on the operation's first request,
// not at startup: after NewValidator nothing is compiled, and validating one
// operation's body compiles that operation's schema only.
func TestValidator_CompilesBodiesOnFirstUse(t *testing.T) {
	spec, err := Document(StackB)
	if err != nil {
		t.Fatal(err)
	}
	v, err := buildValidator(StackB, spec) // a private one: NewValidator's is shared
	if err != nil {
		t.Fatal(err)
	}
	bodies := 0
	for _, o := range v.ops {
		if o.hasBody {
			bodies++
		}
		if o.body != nil || o.fast != nil {
			t.Fatalf("%s: compiled at startup", o.OperationID)
		}
	}
	if bodies < 3 {
		t.Fatalf("only %d operations with a body", bodies)
	}
	start := time.Now()
	if fe := v.ValidateRequestBody("createOpenAIChatCompletion", []byte(`{"model":"builtin/echo-1","messages":[{"role":"user","content":"hi"}]}`)); fe != nil {
		t.Fatal(fe)
	}
	t.Logf("first request of an operation: %v (parse + compile)", time.Since(start))
	if fe := v.ValidateRequestBody("createOpenAIChatCompletion", []byte(`{"model":"builtin/echo-1","messages":"hi"}`)); fe == nil || fe.Field != "messages" {
		t.Fatalf("a bad body after the first compile: %+v", fe)
	}
	for _, o := range v.ops {
		if compiled := o.body != nil; compiled != (o.OperationID == "createOpenAIChatCompletion") {
			t.Errorf("%s: compiled %v", o.OperationID, compiled)
		}
	}
}

// A schema that cannot be compiled is the server's defect: the body is not
// judged (no 400 for the client) and the error says so.
func TestValidator_UncompilableSchemaIsUnavailableNotInvalid(t *testing.T) {
	boom := errors.New("schema does not compile")
	o := &operation{hasBody: true, compileBody: func() (*jsonschema.Schema, error) { return nil, boom }}
	fe := o.validateBody([]byte(`{}`))
	if fe == nil || !errors.Is(fe.Unavailable, boom) {
		t.Fatalf("got %+v, want Unavailable = %v", fe, boom)
	}
}
