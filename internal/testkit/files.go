package testkit

import (
	"os"
	"testing"
)

// WriteFile writes content to path with perm and returns path; a file it
// cannot write fails the test (a test that went on without its file
// would test something else).
func WriteFile[C ~string | ~[]byte](t testing.TB, path string, content C, perm os.FileMode) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), perm); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	return path
}
