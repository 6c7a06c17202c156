package openapi

import (
	"errors"
	"testing"

	"github.com/pb33f/jsonschema/v6"
)

// Every request body schema is compiled when the validator is built, so no
// request pays for a parse and compile under load.
func TestValidator_CompilesBodiesWhenBuilt(t *testing.T) {
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
		if !o.hasBody {
			continue
		}
		bodies++
		if o.body == nil || o.compileBody != nil {
			t.Errorf("%s: body schema not compiled (or its compiler kept) when built", o.OperationID)
		}
	}
	if bodies < 3 {
		t.Fatalf("only %d operations with a body", bodies)
	}
	if fe := v.ValidateRequestBody("createOpenAIChatCompletion", []byte(`{"model":"builtin/echo-1","messages":"hi"}`)); fe == nil || fe.Field != "messages" {
		t.Fatalf("a bad body: %+v", fe)
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
