package e2e

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/agentos/agentos/internal/testkit"
)

// TestProdMode: prod refuses an open admin surface and plain-text secrets,
// seeds nothing, takes its first platform admin from `bootstrap` (once),
// and validates with that key.
func TestProdMode(t *testing.T) {
	t.Parallel()
	w := newWorkdir(t)

	refusals := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"open admin surface", nil, []string{"up", "--mode", "prod", "--stack-a-addr", "0.0.0.0:0"}, "open admin surface"},
		{"plain-text secret in env file", nil, []string{"up", "--mode", "prod", "--env-file", "secrets.env"}, "plain-text secrets"},
	}
	testkit.WriteFile(t, w.path("secrets.env"), "AGENTOS_SMTP_PASSWORD=hunter2\n", 0o600)
	for _, tc := range refusals {
		r := w.runEnv(tc.env, tc.args...)
		if r.Code == 0 || !strings.Contains(r.Stdout, tc.want) || !strings.Contains(r.Stdout, "FAIL") {
			t.Errorf("%s: %s", tc.name, r)
		}
	}

	boot := w.mustRun(t, "bootstrap", "--mode", "prod")
	key := regexp.MustCompile(`(?m)^\s+(aos_\S+)$`).FindStringSubmatch(boot.Stdout)
	if key == nil {
		t.Fatalf("bootstrap printed no key: %s", boot)
	}
	if again := w.run("bootstrap", "--mode", "prod"); again.Code == 0 || !strings.Contains(again.Stderr, "platform admin exists") {
		t.Errorf("second bootstrap: %s", again)
	}

	env := []string{"AGENTOS_API_KEY=" + key[1]}
	up := w.runEnv(env, "up", "--mode", "prod")
	if up.Code != 0 {
		t.Fatalf("prod up: %s", up)
	}
	mustContain(t, up, "prod: nothing seeded", "services healthy 3/3", "smoke 7/7", "smoke fixture")
	if _, err := os.Stat(w.path(".agentos", "credentials.json")); !os.IsNotExist(err) {
		t.Errorf("prod wrote a credentials file: %v", err)
	}
	if st := w.runEnv(env, "status"); st.Code != 0 || !strings.Contains(st.Stdout, "mode prod") {
		t.Errorf("prod status: %s", st)
	}
	if r := w.run("nuke", "--yes-really"); r.Code != 0 {
		t.Errorf("nuke: %s", r)
	}
}
