package e2e

import (
	"encoding/xml"
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestValidateAndConformanceByURL starts a node with `up` in one directory
// and checks it with the binary from another that has no data dir, as a CI
// job after a deploy would.
func TestValidateAndConformanceByURL(t *testing.T) {
	t.Parallel()
	w := newWorkdir(t)
	w.mustRun(t, "up")
	nf, c := w.node(), w.creds()
	ci := newWorkdir(t) // no data dir, no env file
	target := []string{"AGENTOS_TARGET_STACK_A=" + nf.StackAURL, "AGENTOS_TARGET_STACK_B=" + nf.StackBURL, "AGENTOS_TARGET_FED=" + nf.FedURL}
	type junit struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Skipped  int `xml:"skipped,attr"`
		Suites   []struct {
			Cases []struct {
				Name    string `xml:"name,attr"`
				Skipped *struct {
					Message string `xml:"message,attr"`
				} `xml:"skipped"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	readJUnit := func(name string) junit {
		t.Helper()
		raw, err := os.ReadFile(ci.path(name))
		if err != nil {
			t.Fatal(err)
		}
		var j junit
		if err := xml.Unmarshal(raw, &j); err != nil {
			t.Fatalf("%s does not parse: %v", name, err)
		}
		n := 0
		for _, s := range j.Suites {
			n += len(s.Cases)
		}
		if n != j.Tests {
			t.Fatalf("%s: tests=%d but %d testcases", name, j.Tests, n)
		}
		return j
	}

	full := ci.runEnv(target, "validate", "--api-key", c.TenantAdmin.APIKey, "--admin-key", c.PlatformAdmin.APIKey, "--format", "junit", "--output", "validate.xml")
	if full.Code != 0 {
		t.Fatalf("validate by URL: %s", full)
	}
	if j := readJUnit("validate.xml"); j.Tests != 11 || j.Failures != 0 || j.Skipped != 0 {
		t.Fatalf("validate.xml: %+v", j)
	}
	js := ci.runEnv(target, "validate", "--api-key", c.TenantAdmin.APIKey, "--format", "json")
	if js.Code != 0 || !strings.HasPrefix(strings.TrimSpace(js.Stdout), "{") || !strings.Contains(js.Stdout, `"status": "skipped"`) {
		t.Fatalf("validate json with a tenant key only: %s", js)
	}
	tenantOnly := ci.runEnv(target, "validate", "--api-key", c.TenantAdmin.APIKey, "--format", "junit", "--output", "tenant.xml")
	if tenantOnly.Code != 0 {
		t.Fatalf("tenant key only: %s", tenantOnly)
	}
	skippedWhy := ""
	for _, s := range readJUnit("tenant.xml").Suites {
		for _, tc := range s.Cases {
			if tc.Name == "tenant isolation" && tc.Skipped != nil {
				skippedWhy = tc.Skipped.Message
			}
		}
	}
	if !strings.Contains(skippedWhy, "--admin-key") {
		t.Fatalf("isolation gate not skipped with a reason: %q", skippedWhy)
	}
	wrong := ci.runEnv(target, "validate", "--api-key", "aos_not_a_key")
	if wrong.Code != 1 || !strings.Contains(wrong.Stderr, "smoke/probe agent") || !strings.Contains(wrong.Stdout, "401") {
		t.Fatalf("wrong key: %s", wrong)
	}
	conf := ci.runEnv(target, "conformance", "--api-key", c.TenantAdmin.APIKey, "--admin-key", c.PlatformAdmin.APIKey)
	var ops, passed, failed int
	if i := strings.Index(conf.Stdout, "conformance: "); i >= 0 {
		fmt.Sscanf(conf.Stdout[i:], "conformance: %d operations, %d passed, %d failed", &ops, &passed, &failed)
	}
	if conf.Code != 0 || ops < 66 || passed != ops || failed != 0 {
		t.Fatalf("conformance: %d operations, %d passed, %d failed: %s", ops, passed, failed, conf)
	}
	entries, _ := os.ReadDir(ci.dir)
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".xml") {
			t.Errorf("by URL wrote %s into the CI directory", e.Name())
		}
	}
}
