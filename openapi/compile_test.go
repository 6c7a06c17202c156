package openapi_test

import (
	"testing"

	"github.com/agentos/agentos/openapi"
)

func TestValidator_EverySchemaCompiles(t *testing.T) {
	for _, s := range openapi.Stacks() {
		v, err := openapi.NewValidator(s)
		if err != nil {
			t.Fatal(err)
		}
		if err := v.CompileAll(); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}
