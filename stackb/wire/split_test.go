package wire

import (
	"slices"
	"strings"
	"testing"
)

func TestSplitWords_PiecesJoinBackToTheText(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"one", []string{"one"}},
		{"one two", []string{"one ", "two"}},
		{"a b\nc ", []string{"a ", "b\n", "c "}},
		{"  ", []string{" ", " "}},
	} {
		got := SplitWords(tc.in)
		if !slices.Equal(got, tc.want) {
			t.Errorf("SplitWords(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if strings.Join(got, "") != tc.in {
			t.Errorf("SplitWords(%q) pieces join to %q", tc.in, strings.Join(got, ""))
		}
	}
}
