package core

import "strings"

// The contract's ids and names are short ASCII words (agent, tool, secret,
// node and memory names; tenant and principal ids). They are checked by
// the two functions below rather than by regular expressions: a pattern
// such as ^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$ compiles to a program with a
// copy of its class per allowed byte, tens of kilobytes that every node
// kept live for a one-pass byte check.

// ValidName reports whether s is 1 to max bytes of ASCII letters, digits
// and the bytes of punct, beginning with a letter or a digit: the pattern
// ^[A-Za-z0-9][A-Za-z0-9<punct>]{0,max-1}$.
func ValidName(s string, max int, punct string) bool {
	return s != "" && isAlnum(s[0]) && ValidChars(s, 1, max, punct)
}

// ValidChars reports whether s is min to max bytes of ASCII letters,
// digits and the bytes of punct: the pattern ^[A-Za-z0-9<punct>]{min,max}$.
func ValidChars(s string, min, max int, punct string) bool {
	if len(s) < min || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && strings.IndexByte(punct, c) < 0 {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}
