package stackb_test

import (
	"testing"

	"github.com/agentos/agentos/conformance"
	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/stackb/client"
)

func TestGateway_ModelPortConformance_InProcess(t *testing.T) {
	conformance.RunModelPortSuite(t, func(t *testing.T) (core.ModelPort, core.Auth) {
		e := newEnv(t, envOpt{})
		return e.gw, e.auth
	})
}

func TestClient_ModelPortConformance_HTTP(t *testing.T) {
	conformance.RunModelPortSuite(t, func(t *testing.T) (core.ModelPort, core.Auth) {
		e := newEnv(t, envOpt{})
		return client.New(e.serve(t), "service", nil), e.auth
	})
}
