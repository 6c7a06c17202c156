package operator_test

import (
	"encoding/json"
	"encoding/pem"
	"encoding/xml"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentos/agentos/app"
	"github.com/agentos/agentos/internal/testkit"
	"github.com/agentos/agentos/internal/testkit/testnode"
	"github.com/agentos/agentos/openapi"
	"github.com/agentos/agentos/operator"
)

// jsonReport is the part of a phase report (--format json) the tests read.
type jsonReport struct {
	Status string `json:"status"`
	Phases []struct {
		Name   string `json:"name"`
		Checks []struct {
			Name, Status, Detail string
		} `json:"checks"`
	} `json:"phases"`
}

// runJSONReport runs a command with --format json that must exit 0,
// decodes the report it prints on stdout and returns it with stderr.
func runJSONReport(t *testing.T, args ...string) (jsonReport, string) {
	t.Helper()
	code, out, errw := runCLI(t, append(args, "--format", "json")...)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errw)
	}
	var rep jsonReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("stdout is not the json report: %v\n%s", err, out)
	}
	return rep, errw
}

func targets(n *app.Node) []string {
	return []string{"--target-stack-a", n.URL(app.StackA), "--target-stack-b", n.URL(app.StackB), "--target-fed", n.URL(app.StackFed)}
}

// junitDoc is what a CI system reads of a JUnit report.
type junitDoc struct {
	Tests    int `xml:"tests,attr"`
	Failures int `xml:"failures,attr"`
	Skipped  int `xml:"skipped,attr"`
	Suites   []struct {
		Name  string `xml:"name,attr"`
		Tests int    `xml:"tests,attr"`
		Cases []struct {
			Name    string `xml:"name,attr"`
			Failure *struct {
				Message string `xml:"message,attr"`
				Body    string `xml:",chardata"`
			} `xml:"failure"`
			Skipped *struct {
				Message string `xml:"message,attr"`
			} `xml:"skipped"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

func readJUnit(t *testing.T, path string) junitDoc {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc junitDoc
	if err := xml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("junit does not parse: %v\n%s", err, raw)
	}
	n := 0
	for _, s := range doc.Suites {
		n += len(s.Cases)
	}
	if n != doc.Tests {
		t.Fatalf("junit says %d tests but holds %d testcases", doc.Tests, n)
	}
	return doc
}

func (d junitDoc) find(name string) (failure, skipped string, ok bool) {
	for _, s := range d.Suites {
		for _, c := range s.Cases {
			if c.Name != name {
				continue
			}
			if c.Failure != nil {
				failure = c.Failure.Message + "\n" + c.Failure.Body
			}
			if c.Skipped != nil {
				skipped = c.Skipped.Message
			}
			return failure, skipped, true
		}
	}
	return "", "", false
}

// TestValidate_ByURL checks a node it did not start, from a directory with
// no data dir, in the three formats, with a tenant key only, with a wrong
// key and against an address nobody listens on.
func TestValidate_ByURL(t *testing.T) {
	n, creds := testnode.Start(t).Parts()
	work := t.TempDir()
	t.Chdir(work)
	tenant, admin := creds.TenantAdmin.APIKey, creds.PlatformAdmin.APIKey

	t.Run("text with both keys", func(t *testing.T) {
		code, out, errw := runCLI(t, append([]string{"validate", "--api-key", tenant, "--admin-key", admin}, targets(n)...)...)
		if code != 0 {
			t.Fatalf("exit %d\n%s\n%s", code, out, errw)
		}
		for _, want := range []string{"ok   probe agent — " + operator.ProbeAgentID, "ok   tenant isolation", "ok   stack-a healthy", "validated"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("json on stdout", func(t *testing.T) {
		rep, errw := runJSONReport(t, append([]string{"validate", "--api-key", tenant, "--admin-key", admin}, targets(n)...)...)
		if rep.Status != "ok" || len(rep.Phases) != 2 || len(rep.Phases[0].Checks) != 3 || len(rep.Phases[1].Checks) != 8 {
			t.Fatalf("report: %+v", rep)
		}
		if !strings.Contains(errw, "[1/2] health") {
			t.Errorf("progress should go to stderr when stdout carries the report:\n%s", errw)
		}
	})
	t.Run("junit file", func(t *testing.T) {
		path := filepath.Join(work, "validate.xml")
		code, out, errw := runCLI(t, append([]string{"validate", "--api-key", tenant, "--admin-key", admin, "--format", "junit", "--output", path}, targets(n)...)...)
		if code != 0 {
			t.Fatalf("exit %d\n%s\n%s", code, out, errw)
		}
		doc := readJUnit(t, path)
		if doc.Tests != 11 || doc.Failures != 0 || doc.Skipped != 0 || len(doc.Suites) != 2 {
			t.Fatalf("junit counts: tests %d failures %d skipped %d suites %d", doc.Tests, doc.Failures, doc.Skipped, len(doc.Suites))
		}
	})
	t.Run("tenant key only skips the isolation gate", func(t *testing.T) {
		path := filepath.Join(work, "tenant-only.xml")
		code, out, errw := runCLI(t, append([]string{"validate", "--api-key", tenant, "--format", "junit", "--output", path}, targets(n)...)...)
		if code != 0 {
			t.Fatalf("exit %d\n%s\n%s", code, out, errw)
		}
		doc := readJUnit(t, path)
		_, skipped, ok := doc.find("tenant isolation")
		if !ok || !strings.Contains(skipped, "--admin-key") || doc.Skipped != 1 || doc.Failures != 0 {
			t.Fatalf("isolation gate: ok=%v skipped=%q (skipped %d, failures %d)", ok, skipped, doc.Skipped, doc.Failures)
		}
	})
	t.Run("wrong key fails and names the gate", func(t *testing.T) {
		path := filepath.Join(work, "wrong.xml")
		code, out, errw := runCLI(t, append([]string{"validate", "--api-key", "aos_wrong_key", "--format", "junit", "--output", path}, targets(n)...)...)
		if code != operator.ExitFailed {
			t.Fatalf("exit %d, want %d\n%s\n%s", code, operator.ExitFailed, out, errw)
		}
		if !strings.Contains(errw, "smoke/probe agent") {
			t.Errorf("stderr should name the failing gate:\n%s", errw)
		}
		failure, _, ok := readJUnit(t, path).find("probe agent")
		if !ok || !strings.Contains(failure, "401") {
			t.Fatalf("junit failure should carry the answer: %q", failure)
		}
	})
	t.Run("from the environment", func(t *testing.T) {
		t.Setenv(operator.TargetStackAEnv, n.URL(app.StackA))
		t.Setenv(operator.TargetStackBEnv, n.URL(app.StackB))
		t.Setenv(operator.TargetFedEnv, n.URL(app.StackFed))
		t.Setenv(operator.TargetAPIKeyEnv, tenant)
		t.Setenv(operator.TargetAdminEnv, admin)
		code, out, errw := runCLI(t, "validate")
		if code != 0 || !strings.Contains(out, "ok   tenant isolation") {
			t.Fatalf("exit %d\n%s\n%s", code, out, errw)
		}
	})
	t.Run("unreachable target", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		dead := "http://" + ln.Addr().String()
		ln.Close()
		code, out, errw := runCLI(t, "validate", "--api-key", tenant, "--timeout", "2s",
			"--target-stack-a", dead, "--target-stack-b", dead, "--target-fed", dead)
		if code != operator.ExitUnreachable || !strings.Contains(errw, "could not reach the target") {
			t.Fatalf("exit %d, want %d\n%s\n%s", code, operator.ExitUnreachable, out, errw)
		}
	})
	// Nothing of a data dir or a reports dir was written where it ran.
	entries, _ := os.ReadDir(work)
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".xml") {
			t.Errorf("validate by URL wrote %s into the working directory", e.Name())
		}
	}
	// The probe agent is left disabled.
	var got struct {
		Agent struct {
			Status string `json:"status"`
		} `json:"agent"`
	}
	testkit.Do(t, "GET", n.URL(app.StackA)+"/v1/agents/"+operator.ProbeAgentID, tenant, nil).Expect(t, "get the probe agent", 200).Decode(t, &got)
	if got.Agent.Status != "disabled" {
		t.Errorf("probe agent status %q, want disabled", got.Agent.Status)
	}
}

// TestConformance_LiveNode runs `agentos conformance` against a real node:
// every operation of the three documents is implemented, accepted and
// answers as documented.
func TestConformance_LiveNode(t *testing.T) {
	n, creds := testnode.Start(t).Parts()
	t.Chdir(t.TempDir())
	rep, _ := runJSONReport(t, append([]string{"conformance", "--api-key", creds.TenantAdmin.APIKey, "--admin-key", creds.PlatformAdmin.APIKey}, targets(n)...)...)
	total := 0
	for _, p := range rep.Phases {
		for _, c := range p.Checks {
			total++
			if c.Status != "ok" || !strings.Contains(c.Detail, "implemented yes, accepted yes, valid yes") {
				t.Errorf("%s %s: %s %s", p.Name, c.Name, c.Status, c.Detail)
			}
		}
	}
	if want := documentedOperations(t); rep.Status != "ok" || len(rep.Phases) != 3 || total != want {
		t.Fatalf("status %s, %d phases, %d operations (want %d)", rep.Status, len(rep.Phases), total, want)
	}
}

// brokenServer is a stand-in that gets the contract wrong in the ways a
// reimplementation might: a health body of the wrong shape, an error
// without the error object, a route that is missing.
func brokenServer() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"status": 5}`))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"status":"ok","checks":{}}`))
	})
	mux.HandleFunc("POST /v1/admin/tenants", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		w.Write([]byte("boom"))
	})
	return mux
}

// TestConformance_BrokenServer shows the differences of a server that gets
// the contract wrong, over TLS with a private CA, and the exit statuses.
func TestConformance_BrokenServer(t *testing.T) {
	srv := httptest.NewTLSServer(brokenServer())
	defer srv.Close()
	work := t.TempDir()
	t.Chdir(work)
	ca := testkit.WriteFile(t, filepath.Join(work, "ca.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600)
	args := []string{"conformance", "--api-key", "k", "--admin-key", "a", "--timeout", "5s",
		"--target-stack-a", srv.URL, "--target-stack-b", srv.URL, "--target-fed", srv.URL}

	code, out, errw := runCLI(t, args...)
	if code != operator.ExitUnreachable || !strings.Contains(errw+out, "--ca-file") {
		t.Fatalf("without the CA: exit %d, want %d and a --ca-file hint\n%s\n%s", code, operator.ExitUnreachable, out, errw)
	}

	path := filepath.Join(work, "conformance.xml")
	code, out, errw = runCLI(t, append(args, "--ca-file", ca, "--format", "junit", "--output", path)...)
	if code != operator.ExitFailed {
		t.Fatalf("exit %d, want %d\n%s\n%s", code, operator.ExitFailed, out, errw)
	}
	doc := readJUnit(t, path)
	if doc.Tests != documentedOperations(t) || doc.Failures < doc.Tests-10 {
		t.Fatalf("tests %d failures %d", doc.Tests, doc.Failures)
	}
	for name, want := range map[string]string{
		"getLiveness":     "does not fit the document",
		"createTenant":    "answered 500",
		"getStackBHealth": "implemented no",
		"getReadiness":    "",
	} {
		failure, _, ok := doc.find(name)
		switch {
		case !ok:
			t.Errorf("%s: no testcase", name)
		case want == "" && failure != "":
			t.Errorf("%s should pass: %s", name, failure)
		case want != "" && !strings.Contains(failure, want):
			t.Errorf("%s: failure %q lacks %q", name, failure, want)
		}
	}
	if !strings.Contains(errw, "operation(s) differ from the documents") {
		t.Errorf("stderr: %s", errw)
	}
}

// documentedOperations counts the operations of the three documents.
func documentedOperations(t *testing.T) int {
	t.Helper()
	n := 0
	for _, s := range openapi.Stacks() {
		v, err := openapi.NewValidator(s)
		if err != nil {
			t.Fatal(err)
		}
		n += len(v.Operations())
	}
	return n
}

// TestValidate_LocalJUnit: the node of a data dir, validated as before,
// also gives CI its JUnit report.
func TestValidate_LocalJUnit(t *testing.T) {
	n := testnode.Start(t).Node
	work := t.TempDir()
	t.Chdir(work)
	path := filepath.Join(work, "local.xml")
	code, out, errw := runCLI(t, "validate", "--data-dir", n.Config.DataDir, "--format", "junit", "--output", path)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errw)
	}
	doc := readJUnit(t, path)
	if doc.Tests != 10 || doc.Failures != 0 || doc.Skipped != 0 {
		t.Fatalf("junit: tests %d failures %d skipped %d", doc.Tests, doc.Failures, doc.Skipped)
	}
	if _, _, ok := doc.find("tenant isolation"); !ok {
		t.Fatal("no tenant isolation testcase")
	}
	if entries, _ := os.ReadDir(filepath.Join(work, "reports")); len(entries) != 2 {
		t.Errorf("local validate keeps writing reports/validate-*.{md,json}: %d files", len(entries))
	}
}
