package app_test

import (
	"testing"
	"time"

	"github.com/agentos/agentos/app"
)

func TestLoadConfig_Precedence(t *testing.T) {
	env := map[string]string{"AGENTOS_STACK_A_ADDR": "127.0.0.1:7001", "AGENTOS_MODE": "dev"}
	cfg, err := app.LoadConfig(app.Layers{
		EnvFile: map[string]string{"AGENTOS_STACK_A_ADDR": "127.0.0.1:6001", "AGENTOS_REGION": "eu-west-1", "AGENTOS_MODE": "prod", "AGENTOS_ALERT_INTERVAL": "10s"},
		Environ: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		Flags:   map[string]string{"mode": "demo"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.StackAAddr != "127.0.0.1:7001" || cfg.Region != "eu-west-1" || cfg.Mode != "demo" || cfg.Environment != "demo" || cfg.StackBAddr != "127.0.0.1:8081" || cfg.AlertInterval != 10*time.Second {
		t.Fatalf("precedence flags > env > file > defaults broken: %+v", cfg)
	}
	for _, bad := range []map[string]string{{"mode": "prd"}, {"stack-a-addr": "nope"}, {"smtp-port": "99999"}, {"alert-interval": "10ms"}, {"fed-tls-cert": "only-one.pem"}} {
		if _, err := app.LoadConfig(app.Layers{Environ: func(string) (string, bool) { return "", false }, Flags: bad}); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
