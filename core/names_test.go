package core

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// ValidName and ValidChars accept exactly what the patterns they replace
// accept: every string of up to 300 bytes drawn from an alphabet of the
// allowed bytes, their neighbours, '/', ':' and a multi-byte letter.
func TestValidName_MatchesThePatterns(t *testing.T) {
	cases := []struct {
		re    string
		check func(string) bool
	}{
		{`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`, func(s string) bool { return ValidName(s, 128, "_.-") }},
		{`^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,255}$`, func(s string) bool { return ValidName(s, 256, "_.:-") }},
		{`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`, func(s string) bool { return ValidName(s, 64, "._-") }},
		{`^tnt_[A-Za-z0-9_-]{1,64}$`, func(s string) bool {
			rest, ok := strings.CutPrefix(s, "tnt_")
			return ok && ValidChars(rest, 1, 64, "_-")
		}},
	}
	alphabet := []string{"a", "Z", "0", "9", "_", ".", "-", ":", "/", " ", "`", "@", "[", "{", "é", "tnt_"}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, c := range cases {
		re := regexp.MustCompile(c.re)
		inputs := []string{"", "a", "_a", "a_", strings.Repeat("a", 63), strings.Repeat("a", 64), strings.Repeat("a", 65),
			strings.Repeat("a", 128), strings.Repeat("a", 129), strings.Repeat("a", 256), strings.Repeat("a", 257), "tnt_", "tnt_x", "tnt_" + strings.Repeat("x", 65)}
		for range 5000 {
			var b strings.Builder
			for n := rng.IntN(8); n > 0; n-- {
				b.WriteString(alphabet[rng.IntN(len(alphabet))])
			}
			if rng.IntN(4) == 0 {
				b.WriteString(strings.Repeat("b", rng.IntN(300)))
			}
			inputs = append(inputs, b.String())
		}
		for _, s := range inputs {
			if got, want := c.check(s), re.MatchString(s); got != want {
				t.Fatalf("%s: %q: got %v, the pattern says %v", c.re, s, got, want)
			}
		}
	}
}
