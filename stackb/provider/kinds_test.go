package provider_test

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/agentos/agentos/stackb/internal/fakeup"
	"github.com/agentos/agentos/stackb/provider"
)

func TestKind_Builtin(t *testing.T) {
	runKindSuite(t, kindCase{kind: "builtin", model: "echo-1", answers: "echo: ", embeds: true,
		spec: func(t *testing.T) provider.Spec { return provider.Spec{Name: "builtin"} }})
}

func TestKind_OpenAI(t *testing.T) {
	runKindSuite(t, kindCase{kind: "openai", model: "m1", answers: "up: ", streams: true, embeds: true, hangModel: "hang",
		failModel: func(s int) string { return "fail-" + strconv.Itoa(s) },
		spec: func(t *testing.T) provider.Spec {
			up, err := fakeup.OpenAI("up")
			if err != nil {
				t.Fatal(err)
			}
			up.Key = "k-test"
			t.Cleanup(up.Close)
			return provider.Spec{Name: "up", BaseURL: up.URL, APIKey: "k-test", Client: &http.Client{}}
		}})
}

func TestKind_Anthropic(t *testing.T) {
	runKindSuite(t, kindCase{kind: "anthropic", model: "claude-fake", answers: "up: ", streams: true, hangModel: "hang",
		failModel: func(s int) string { return "fail-" + strconv.Itoa(s) },
		spec: func(t *testing.T) provider.Spec {
			up, err := fakeup.Anthropic("up")
			if err != nil {
				t.Fatal(err)
			}
			up.Key = "k-test"
			t.Cleanup(up.Close)
			return provider.Spec{Name: "up", BaseURL: up.URL, APIKey: "k-test", Client: &http.Client{}}
		}})
}

func TestKind_Registry(t *testing.T) {
	if got := provider.Kinds(); len(got) != 3 || got[0] != "anthropic" || got[1] != "builtin" || got[2] != "openai" {
		t.Fatalf("Kinds() = %v", got)
	}
	k, _ := provider.Lookup("openai")
	if _, err := k.New(provider.Spec{Name: "x"}); err == nil || err.Error() != "base_url: required for kind openai" {
		t.Fatalf("openai without base_url: %v", err)
	}
	if _, ok := provider.Lookup("grpc"); ok {
		t.Fatal("unknown kind found")
	}
}
