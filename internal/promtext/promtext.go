// Package promtext reads the Prometheus text exposition format (version
// 0.0.4, what a node's /metrics serves) into samples. It is the one reader
// of metrics pages: the operator's smoke gates, the bench's node probe and
// the test kit's Scrape all parse through it.
//
// The rules, line by line (a line ends at '\n'; a '\r' before it is
// dropped):
//
//   - A blank line, or one whose first non-blank character is '#' (HELP,
//     TYPE, any other comment, OpenMetrics' "# EOF"), carries no sample.
//   - A sample line is a series, one or more blanks (space or tab), a
//     value, and optionally blanks and a timestamp (integer milliseconds).
//     The series is a metric name with an optional label set,
//     name{label="value",...}; a trailing comma and blanks around the
//     label set and its tokens are allowed. Names may also be written quoted
//     (UTF-8 names): {"metric.name","label.name"="value"}, the metric
//     name first inside the braces.
//   - A label value is a double-quoted string in which \\, \" and \n are
//     the only escapes; it may hold anything else, spaces, '}', ',' and
//     '#' included.
//   - The value is a Go float: NaN, +Inf and -Inf included.
//   - After the value (or the timestamp), a '#' starts an exemplar, which
//     is skipped to the end of the line. Any other text there makes the
//     line malformed.
//   - A malformed line, or one repeating a series already read, yields no
//     sample; the lines after it are still read. Parse reports the first
//     such line in a *SyntaxError alongside the samples it did read.
//
// Names are kept as written: a histogram's x_bucket, x_sum and x_count
// are three metric names here, as they are on the page.
package promtext

import (
	"bytes"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Label is one name="value" pair of a series, unescaped.
type Label struct {
	Name, Value string
}

// Sample is one sample line of a page.
type Sample struct {
	// Name is the metric name as written (x_total, x_bucket).
	Name string
	// Labels are the series' labels in the order written.
	Labels []Label
	Value  float64
	// Timestamp is the line's timestamp in milliseconds since the epoch;
	// 0 when the line has none.
	Timestamp int64
}

// Label returns the value of the label name and whether the sample has
// it.
func (s Sample) Label(name string) (string, bool) {
	for _, l := range s.Labels {
		if l.Name == name {
			return l.Value, true
		}
	}
	return "", false
}

// Series is the sample's series written as on a page: name or
// name{label="value",...}, labels in their order, values escaped.
func (s Sample) Series() string {
	var b strings.Builder
	legacy := isMetricName(s.Name)
	if legacy {
		b.WriteString(s.Name)
	}
	if len(s.Labels) == 0 && legacy {
		return b.String()
	}
	b.WriteByte('{')
	if !legacy {
		writeQuoted(&b, s.Name)
	}
	for i, l := range s.Labels {
		if i > 0 || !legacy {
			b.WriteByte(',')
		}
		if isLabelName(l.Name) {
			b.WriteString(l.Name)
		} else {
			writeQuoted(&b, l.Name)
		}
		b.WriteByte('=')
		writeQuoted(&b, l.Value)
	}
	b.WriteByte('}')
	return b.String()
}

// SyntaxError is the first line of a page that yielded no sample because
// it is malformed (or repeats a series).
type SyntaxError struct {
	// Line is its number, from 1.
	Line int
	// Reason says what is wrong with it.
	Reason string
	// More counts the malformed lines after it.
	More int
}

func (e *SyntaxError) Error() string {
	msg := fmt.Sprintf("metrics text line %d: %s", e.Line, e.Reason)
	if e.More > 0 {
		msg += fmt.Sprintf(" (and %d more malformed lines)", e.More)
	}
	return msg
}

// Page is a parsed exposition. The zero Page has no samples. A Page is
// not changed after Parse, so it may be read from several goroutines.
type Page struct {
	samples  []Sample
	byName   map[string][]int
	bySeries map[string]int
}

// Parse reads a text exposition. It returns every sample of the
// well-formed lines; err, when not nil, is a *SyntaxError naming the first
// line that yielded none (the samples are still good to use).
func Parse(text []byte) (Page, error) {
	// Room for a node's page up front; a page of blank lines must not
	// size it.
	hint := min(bytes.Count(text, []byte{'\n'})+1, 4096)
	p := Page{samples: make([]Sample, 0, hint), byName: map[string][]int{}, bySeries: make(map[string]int, hint)}
	var first *SyntaxError
	fail := func(line int, reason string) {
		if first == nil {
			first = &SyntaxError{Line: line, Reason: reason}
		} else {
			first.More++
		}
	}
	rest := string(text)
	for n := 1; rest != ""; n++ {
		var line string
		line, rest, _ = strings.Cut(rest, "\n")
		line = strings.TrimSuffix(line, "\r")
		s, ok, err := parseLine(line)
		if err != nil {
			fail(n, err.Error())
			continue
		}
		if !ok {
			continue
		}
		key, ok := seriesKey(s.Name, s.Labels)
		if !ok {
			fail(n, "a label given twice")
			continue
		}
		if _, dup := p.bySeries[key]; dup {
			fail(n, "series "+s.Series()+" repeated")
			continue
		}
		p.bySeries[key] = len(p.samples)
		p.byName[s.Name] = append(p.byName[s.Name], len(p.samples))
		p.samples = append(p.samples, s)
	}
	if first != nil {
		return p, first
	}
	return p, nil
}

// Samples lists the page's samples in the order written. The slice is the
// page's own: callers must not change it.
func (p Page) Samples() []Sample { return p.samples }

// Value is the sample of the exact series, written as on a page (name or
// name{label="value",...}, labels in any order), and whether the page has
// it. A series that does not parse is not on the page.
func (p Page) Value(series string) (float64, bool) {
	name, labels, err := parseSelector(series)
	if err != nil {
		return 0, false
	}
	key, ok := seriesKey(name, labels)
	if !ok {
		return 0, false
	}
	i, ok := p.bySeries[key]
	if !ok {
		return 0, false
	}
	return p.samples[i].Value, true
}

// Sum adds the samples of the metric name whose labels hold every pair of
// match (each written as on a page, `status="ok"`, or several pairs
// comma-separated); with no match every label set counts (labels folded).
// It is 0 when no sample matches. A match that is not name="value" pairs
// is a programming error and panics.
func (p Page) Sum(name string, match ...string) float64 {
	want := matchers(match)
	total := 0.0
	for _, i := range p.byName[name] {
		if holds(p.samples[i], want) {
			total += p.samples[i].Value
		}
	}
	return total
}

// Has reports whether the metric name has at least one sample.
func (p Page) Has(name string) bool { return len(p.byName[name]) > 0 }

// Series lists the series of the metric name (Sample.Series), in the
// order written.
func (p Page) Series(name string) []string {
	var out []string
	for _, i := range p.byName[name] {
		out = append(out, p.samples[i].Series())
	}
	return out
}

// LabelValues lists the values label takes across the samples of the
// metric name, and how many of those samples lack it.
func (p Page) LabelValues(name, label string) (values map[string]bool, without int) {
	values = map[string]bool{}
	for _, i := range p.byName[name] {
		if v, ok := p.samples[i].Label(label); ok {
			values[v] = true
		} else {
			without++
		}
	}
	return values, without
}

// matchers reads Sum's match arguments into label pairs.
func matchers(match []string) []Label {
	var want []Label
	for _, m := range match {
		c := cursor{s: "{" + m + "}"}
		_, labels, err := c.labelSet("match") // any name: the braces hold pairs only
		if err == nil && c.i != len(c.s) {
			err = fmt.Errorf("text after the pairs")
		}
		if err == nil && len(labels) == 0 {
			err = fmt.Errorf("no pairs")
		}
		if err != nil {
			panic(fmt.Sprintf(`promtext: match %q is not name="value" pairs: %v`, m, err))
		}
		want = append(want, labels...)
	}
	return want
}

func holds(s Sample, want []Label) bool {
	for _, w := range want {
		if v, ok := s.Label(w.Name); !ok || v != w.Value {
			return false
		}
	}
	return true
}

// seriesKey identifies a series whatever the order of its labels; ok is
// false when a label name is given twice. Every part is quoted, so no
// name or value can make two series share a key. (sort.Slice, already in
// the binary, rather than a generic sort instantiated for Label, for a
// long label set.)
func seriesKey(name string, labels []Label) (key string, ok bool) {
	sorted := labels
	if !byName(labels) { // pages write them sorted, but for le and quantile
		sorted = append(make([]Label, 0, len(labels)), labels...)
		if len(sorted) <= 16 {
			for i := 1; i < len(sorted); i++ {
				for j := i; j > 0 && sorted[j].Name < sorted[j-1].Name; j-- {
					sorted[j], sorted[j-1] = sorted[j-1], sorted[j]
				}
			}
		} else {
			sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
		}
	}
	size := len(name) + 2
	for _, l := range sorted {
		size += len(l.Name) + len(l.Value) + 4
	}
	var b strings.Builder
	b.Grow(size)
	writeQuoted(&b, name)
	for i, l := range sorted {
		if i > 0 && l.Name == sorted[i-1].Name {
			return "", false
		}
		writeQuoted(&b, l.Name)
		writeQuoted(&b, l.Value)
	}
	return b.String(), true
}

// byName reports whether labels are in the order of their names.
func byName(labels []Label) bool {
	for i := 1; i < len(labels); i++ {
		if labels[i].Name < labels[i-1].Name {
			return false
		}
	}
	return true
}

// parseSelector reads a series written alone (Value's argument).
func parseSelector(series string) (string, []Label, error) {
	c := cursor{s: series}
	c.blanks()
	name, labels, err := c.series()
	if err != nil {
		return "", nil, err
	}
	if c.blanks(); c.i != len(c.s) {
		return "", nil, fmt.Errorf("text after the series")
	}
	return name, labels, nil
}

// parseLine reads one line: ok is false for a blank or comment line.
func parseLine(line string) (s Sample, ok bool, err error) {
	c := cursor{s: line}
	c.blanks()
	if c.done() || c.peek() == '#' {
		return Sample{}, false, nil
	}
	if s.Name, s.Labels, err = c.series(); err != nil {
		return Sample{}, false, err
	}
	if c.blanks() == 0 {
		return Sample{}, false, fmt.Errorf("no blank between the series and its value")
	}
	tok := c.token()
	if tok == "" {
		return Sample{}, false, fmt.Errorf("no value")
	}
	if s.Value, err = strconv.ParseFloat(tok, 64); err != nil {
		return Sample{}, false, fmt.Errorf("value %q is not a number", tok)
	}
	if c.blanks() == 0 || c.done() || c.peek() == '#' {
		return s, true, c.end()
	}
	tok = c.token()
	if s.Timestamp, err = strconv.ParseInt(tok, 10, 64); err != nil {
		return Sample{}, false, fmt.Errorf("timestamp %q is not an integer", tok)
	}
	c.blanks()
	return s, true, c.end()
}

// cursor walks one line.
type cursor struct {
	s string
	i int
}

func (c *cursor) done() bool { return c.i >= len(c.s) }
func (c *cursor) peek() byte { return c.s[c.i] }

// blanks skips spaces and tabs and says how many.
func (c *cursor) blanks() int {
	start := c.i
	for !c.done() && (c.peek() == ' ' || c.peek() == '\t') {
		c.i++
	}
	return c.i - start
}

// token reads up to the next blank or the end.
func (c *cursor) token() string {
	start := c.i
	for !c.done() && c.peek() != ' ' && c.peek() != '\t' {
		c.i++
	}
	return c.s[start:c.i]
}

// end accepts the end of the line or an exemplar ('#' to the end).
func (c *cursor) end() error {
	if c.done() || c.peek() == '#' {
		return nil
	}
	return fmt.Errorf("unexpected text %q after the value", truncate(c.s[c.i:]))
}

// series reads name, name{labels} or {"name",labels}.
func (c *cursor) series() (string, []Label, error) {
	name := ""
	if !c.done() && c.peek() != '{' {
		name = c.ident(isMetricStart, isMetricChar)
		if name == "" {
			return "", nil, fmt.Errorf("%q does not start with a metric name", truncate(c.s[c.i:]))
		}
	}
	after := c.i
	if c.blanks(); c.done() || c.peek() != '{' {
		c.i = after // the blanks before the value
		return name, nil, nil
	}
	return c.labelSet(name)
}

// labelSet reads {...} at the cursor. name is the metric name read before
// the brace; when it is "" the set must start with the quoted name.
func (c *cursor) labelSet(name string) (string, []Label, error) {
	c.i++ // '{'
	labels := make([]Label, 0, 4)
	first := true
	for {
		c.blanks()
		if c.done() {
			return "", nil, fmt.Errorf("label set not closed")
		}
		if c.peek() == '}' {
			c.i++
			break
		}
		var key string
		quoted := c.peek() == '"'
		if quoted {
			var err error
			if key, err = c.quoted(); err != nil {
				return "", nil, err
			}
			if key == "" {
				return "", nil, fmt.Errorf("empty quoted name")
			}
		} else if key = c.ident(isLabelStart, isLabelChar); key == "" {
			return "", nil, fmt.Errorf("%q is not a label name", truncate(c.s[c.i:]))
		}
		c.blanks()
		if quoted && first && name == "" && (c.done() || c.peek() != '=') {
			// {"metric.name",...}: the quoted metric name.
			name = key
		} else {
			if c.done() || c.peek() != '=' {
				return "", nil, fmt.Errorf("label %s has no '='", key)
			}
			c.i++
			c.blanks()
			if c.done() || c.peek() != '"' {
				return "", nil, fmt.Errorf("label %s's value is not quoted", key)
			}
			value, err := c.quoted()
			if err != nil {
				return "", nil, fmt.Errorf("label %s: %w", key, err)
			}
			labels = append(labels, Label{Name: key, Value: value})
		}
		first = false
		c.blanks()
		if c.done() {
			return "", nil, fmt.Errorf("label set not closed")
		}
		switch c.peek() {
		case ',':
			c.i++
		case '}':
		default:
			return "", nil, fmt.Errorf("unexpected %q in the label set", c.peek())
		}
	}
	if name == "" {
		return "", nil, fmt.Errorf("no metric name")
	}
	return name, labels, nil
}

// quoted reads a double-quoted string at the cursor and unescapes it.
func (c *cursor) quoted() (string, error) {
	c.i++ // '"'
	if end := strings.IndexAny(c.s[c.i:], `"\`); end >= 0 && c.s[c.i+end] == '"' {
		s := c.s[c.i : c.i+end] // no escapes: the line's own bytes
		c.i += end + 1
		return s, nil
	}
	var b strings.Builder
	for !c.done() {
		ch := c.peek()
		c.i++
		switch ch {
		case '"':
			return b.String(), nil
		case '\\':
			if c.done() {
				return "", fmt.Errorf("string ends in a lone backslash")
			}
			switch e := c.peek(); e {
			case '\\', '"':
				b.WriteByte(e)
			case 'n':
				b.WriteByte('\n')
			default:
				return "", fmt.Errorf(`unknown escape \%c`, e)
			}
			c.i++
		default:
			b.WriteByte(ch)
		}
	}
	return "", fmt.Errorf("string not closed")
}

// ident reads [start][char]* at the cursor ("" when none).
func (c *cursor) ident(start, char func(byte) bool) string {
	if c.done() || !start(c.peek()) {
		return ""
	}
	from := c.i
	for c.i++; !c.done() && char(c.peek()); c.i++ {
	}
	return c.s[from:c.i]
}

func isLabelStart(b byte) bool {
	return b == '_' || 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z'
}
func isLabelChar(b byte) bool   { return isLabelStart(b) || '0' <= b && b <= '9' }
func isMetricStart(b byte) bool { return isLabelStart(b) || b == ':' }
func isMetricChar(b byte) bool  { return isLabelChar(b) || b == ':' }

func isMetricName(s string) bool {
	c := cursor{s: s}
	return s != "" && c.ident(isMetricStart, isMetricChar) == s
}

func isLabelName(s string) bool {
	c := cursor{s: s}
	return s != "" && c.ident(isLabelStart, isLabelChar) == s
}

// writeQuoted writes s as a page's double-quoted string.
func writeQuoted(b *strings.Builder, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			b.WriteString(`\\`)
		case '"':
			b.WriteString(`\"`)
		case '\n':
			b.WriteString(`\n`)
		default:
			b.WriteByte(s[i])
		}
	}
	b.WriteByte('"')
}

// truncate shortens text quoted in an error.
func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
