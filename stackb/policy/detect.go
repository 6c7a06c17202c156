package policy

import (
	"net/netip"
	"regexp"
	"strings"
)

// PII and secret kinds the detectors report.
const (
	KindEmail      = "email"
	KindPhone      = "phone"
	KindCard       = "card_number"
	KindNationalID = "national_id"
	KindIP         = "ip_address"
	KindSecret     = "secret"
	KindPrivateKey = "private_key"
)

// AllKinds lists the detectable kinds in detection priority: a span found
// by an earlier kind is not reported again by a later one.
var AllKinds = []string{KindPrivateKey, KindSecret, KindEmail, KindCard, KindNationalID, KindIP, KindPhone}

// Span is one finding: Kind over text[Start:End] (byte offsets).
type Span struct {
	Kind  string
	Start int
	End   int
}

// detector finds candidate spans of one kind. quick is a cheap pre-check
// that lets most texts skip the regular expression entirely.
type detector struct {
	kind  string
	quick func(string) bool
	re    *regexp.Regexp
	valid func(string) bool
}

// The expressions are compiled once, at package init.
var detectors = []detector{
	{kind: KindPrivateKey, quick: func(s string) bool { return strings.Contains(s, "PRIVATE KEY-----") },
		re: regexp.MustCompile(`-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----(?:[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|[\s\S]*)`)},
	{kind: KindSecret, quick: hasSecretMarker,
		re: regexp.MustCompile(`\b(?:sk-(?:proj-|ant-)?[A-Za-z0-9_\-]{20,}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,}|xox[abprs]-[A-Za-z0-9\-]{10,}|AIza[0-9A-Za-z_\-]{35}|sk_live_[0-9A-Za-z]{20,}|eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,})`)},
	{kind: KindEmail, quick: func(s string) bool { return strings.IndexByte(s, '@') >= 0 },
		re: regexp.MustCompile(`[A-Za-z0-9][A-Za-z0-9._%+\-]*@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}`)},
	{kind: KindCard, quick: func(s string) bool { return countDigits(s) >= 13 },
		re: regexp.MustCompile(`\b\d(?:[ \-]?\d){12,18}\b`), valid: luhnValid},
	{kind: KindNationalID, quick: func(s string) bool { return countDigits(s) >= 9 },
		re: regexp.MustCompile(`\b\d{3}-\d{2}-\d{4}\b`), valid: ssnValid},
	{kind: KindIP, quick: mayHoldIP,
		re: regexp.MustCompile(`\b(?:\d{1,3}\.){3}\d{1,3}\b|(?i:[0-9a-f]{0,4}:){2,7}(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9a-f]{0,4})`), valid: ipValid},
	{kind: KindPhone, quick: func(s string) bool { return countDigits(s) >= 7 },
		re: regexp.MustCompile(`(?:\+\d{1,3}[ .\-]?)?(?:\(\d{2,4}\)[ .\-]?|\b\d{2,4}[ .\-])\d{3,4}[ .\-]\d{3,4}\b|\+\d{8,15}\b`), valid: phoneValid},
}

var secretMarkers = []string{"sk-", "AKIA", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "xox", "AIza", "sk_live_", "eyJ"}

// mayHoldIP is true when s has a digit-dot-digit (IPv4) or two colons (IPv6).
func mayHoldIP(s string) bool {
	colons := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '.':
			if i > 0 && i+1 < len(s) && isDigit(s[i-1]) && isDigit(s[i+1]) {
				return true
			}
		case ':':
			colons++
			if colons >= 2 {
				return true
			}
		}
	}
	return false
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func hasSecretMarker(s string) bool {
	for _, m := range secretMarkers {
		if strings.Contains(s, m) {
			return true
		}
	}
	return false
}

func countDigits(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			n++
		}
	}
	return n
}

// luhnValid reports whether the digits of s (separators ignored) pass the
// Luhn check, as every payment card number does.
func luhnValid(s string) bool {
	sum, n := 0, 0
	double := false
	for i := len(s) - 1; i >= 0; i-- {
		c := s[i]
		if c < '0' || c > '9' {
			continue
		}
		d := int(c - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
		n++
	}
	return n >= 13 && n <= 19 && sum%10 == 0
}

// ssnValid rejects the US SSN ranges that are never issued.
func ssnValid(s string) bool {
	area, group, serial := s[0:3], s[4:6], s[7:11]
	return area != "000" && area != "666" && area[0] != '9' && group != "00" && serial != "0000"
}

func ipValid(s string) bool {
	if strings.Count(s, ":") == 0 && strings.Count(s, ".") != 3 {
		return false
	}
	_, err := netip.ParseAddr(s)
	return err == nil
}

// partOfLongerNumber reports whether text[start:end] is a slice of a longer
// run of digit groups (a failed card number is not a phone number).
func partOfLongerNumber(text string, start, end int) bool {
	isDigit := func(c byte) bool { return c >= '0' && c <= '9' }
	isSep := func(c byte) bool { return c == ' ' || c == '-' || c == '.' }
	if end+1 < len(text) && isSep(text[end]) && isDigit(text[end+1]) {
		return true
	}
	if start >= 2 && isSep(text[start-1]) && isDigit(text[start-2]) {
		return true
	}
	return false
}

func phoneValid(s string) bool {
	n := countDigits(s)
	return n >= 7 && n <= 15
}

// Detect returns every span of the kinds wanted (nil = all) in text, in
// text order, without overlaps (the higher-priority kind keeps a span).
func Detect(text string, wanted map[string]bool) []Span {
	var spans []Span
	for i := range detectors {
		d := &detectors[i]
		if wanted != nil && !wanted[d.kind] {
			continue
		}
		if !d.quick(text) {
			continue
		}
		for _, m := range d.re.FindAllStringIndex(text, -1) {
			start, end := m[0], m[1]
			if d.kind == KindIP {
				// Trim the colons the pattern may take from the text around
				// an address; the address itself is what counts.
				for start < end && text[start] == ':' && (end-start < 2 || text[start+1] != ':') {
					start++
				}
			}
			if d.valid != nil && !d.valid(text[start:end]) {
				continue
			}
			if d.kind == KindPhone && partOfLongerNumber(text, start, end) {
				continue
			}
			if overlaps(spans, start, end) {
				continue
			}
			spans = append(spans, Span{Kind: d.kind, Start: start, End: end})
		}
	}
	sortSpans(spans)
	return spans
}

func overlaps(spans []Span, start, end int) bool {
	for _, s := range spans {
		if start < s.End && s.Start < end {
			return true
		}
	}
	return false
}

func sortSpans(s []Span) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j].Start < s[j-1].Start; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
