package promtext_test

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/agentos/agentos/internal/promtext"
)

type L = promtext.Label

// TestParse reads one page per case: the samples it must yield and the
// line its first *SyntaxError must name (0: none).
func TestParse(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	for _, c := range []struct {
		name    string
		text    string
		want    []promtext.Sample
		errLine int
	}{
		{name: "empty", text: ""},
		{
			name: "help, type and comments carry no sample, even when they look like one",
			text: "# HELP x_total things {a=\"b\"} 1\n# TYPE x_total counter\n#x_total 9\n  # indented comment\n\n# EOF\n",
		},
		{
			name: "plain samples, with and without labels",
			text: "# TYPE x_total counter\nx_total{status=\"ok\",tenant=\"a\"} 2\ny 1.5\n",
			want: []promtext.Sample{
				{Name: "x_total", Labels: []L{{"status", "ok"}, {"tenant", "a"}}, Value: 2},
				{Name: "y", Value: 1.5},
			},
		},
		{
			name: "label values holding spaces, '}', ',', '#' and '='",
			text: `x{path="/a b/} c",q="a,b=c # d"} 3` + "\n",
			want: []promtext.Sample{{Name: "x", Labels: []L{{"path", "/a b/} c"}, {"q", "a,b=c # d"}}, Value: 3}},
		},
		{
			name: `escaped quote, backslash and newline in a label value`,
			text: `x{msg="say \"hi\" } now",path="C:\\dir\\",lines="a\nb"} 7` + "\n",
			want: []promtext.Sample{{Name: "x", Labels: []L{{"msg", `say "hi" } now`}, {"path", `C:\dir\`}, {"lines", "a\nb"}}, Value: 7}},
		},
		{
			// The old split-on-the-last-space readers took the timestamp for
			// the value (and the bench probe failed on it).
			name: "timestamp after the value",
			text: "process_cpu_seconds_total 1.5 1700000000000\nx{a=\"1 2\"} 4 -5\n",
			want: []promtext.Sample{
				{Name: "process_cpu_seconds_total", Value: 1.5, Timestamp: 1700000000000},
				{Name: "x", Labels: []L{{"a", "1 2"}}, Value: 4, Timestamp: -5},
			},
		},
		{
			// ...and the exemplar's value for the sample's.
			name: "exemplar after the value or the timestamp is skipped",
			text: "x_total 5 # {trace_id=\"a b\"} 1\ny_total 6 1700000000000 # {trace_id=\"c\"} 2 1.5\nz 7 #\n",
			want: []promtext.Sample{
				{Name: "x_total", Value: 5},
				{Name: "y_total", Value: 6, Timestamp: 1700000000000},
				{Name: "z", Value: 7},
			},
		},
		{
			name: "NaN and infinities",
			text: "a NaN\nb +Inf\nc -Inf\nd 1e-3\n",
			want: []promtext.Sample{{Name: "a", Value: nan}, {Name: "b", Value: inf}, {Name: "c", Value: -inf}, {Name: "d", Value: 0.001}},
		},
		{
			name: "blanks: tabs, around label tokens, trailing, a trailing comma, empty braces, CRLF",
			text: "\tx { a = \"1\" , b=\"2\", }\t3 \r\ny{} 4\r\n",
			want: []promtext.Sample{{Name: "x", Labels: []L{{"a", "1"}, {"b", "2"}}, Value: 3}, {Name: "y", Value: 4}},
		},
		{
			name: "quoted UTF-8 metric and label names",
			text: `{"my.metric","label.x"="v",y="w"} 1` + "\n" + `{"only.name"} 2` + "\n",
			want: []promtext.Sample{
				{Name: "my.metric", Labels: []L{{"label.x", "v"}, {"y", "w"}}, Value: 1},
				{Name: "only.name", Value: 2},
			},
		},
		{
			name:    "a malformed line yields nothing; the lines after it are still read",
			text:    "a 1\nbad{a=\"b\"} not-a-number\nc 3\n",
			want:    []promtext.Sample{{Name: "a", Value: 1}, {Name: "c", Value: 3}},
			errLine: 2,
		},
		{
			name:    "text after the value that is not an exemplar",
			text:    "a 1 2 3\nb 2 garbage\nc 3\n",
			want:    []promtext.Sample{{Name: "c", Value: 3}},
			errLine: 1,
		},
		{
			name:    "a repeated series (labels in any order) keeps the first",
			text:    "x{a=\"1\",b=\"2\"} 1\nx{b=\"2\",a=\"1\"} 5\n",
			want:    []promtext.Sample{{Name: "x", Labels: []L{{"a", "1"}, {"b", "2"}}, Value: 1}},
			errLine: 2,
		},
		{name: "no value", text: "x\n", errLine: 1},
		{name: "no blank before the value", text: "x{a=\"1\"}2\n", errLine: 1},
		{name: "unclosed label set", text: "x{a=\"1\" 2\n", errLine: 1},
		{name: "unclosed label value", text: "x{a=\"1} 2\n", errLine: 1},
		{name: "unquoted label value", text: "x{a=1} 2\n", errLine: 1},
		{name: "unknown escape", text: `x{a="\t"} 2` + "\n", errLine: 1},
		{name: "label given twice", text: "x{a=\"1\",a=\"2\"} 2\n", errLine: 1},
		{name: "label set without a metric name", text: "{a=\"1\"} 2\n", errLine: 1},
		{name: "name starting with a digit", text: "1x 2\n", errLine: 1},
		{name: "timestamp not an integer", text: "x 1 1.5\n", errLine: 1},
		{name: "value out of range", text: "x 1e999\n", errLine: 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			page, err := promtext.Parse([]byte(c.text))
			var se *promtext.SyntaxError
			switch {
			case c.errLine == 0 && err != nil:
				t.Fatalf("error %v", err)
			case c.errLine != 0 && !errors.As(err, &se):
				t.Fatalf("error %v, want a *SyntaxError on line %d", err, c.errLine)
			case c.errLine != 0 && se.Line != c.errLine:
				t.Fatalf("error on line %d (%v), want line %d", se.Line, err, c.errLine)
			}
			if got := page.Samples(); !sameSamples(got, c.want) {
				t.Fatalf("samples\n got %+v\nwant %+v", got, c.want)
			}
		})
	}
}

// TestPage_Queries asks a page the questions its readers ask: a sample by
// exact series, sums with labels folded or filtered, label values.
func TestPage_Queries(t *testing.T) {
	page, err := promtext.Parse([]byte(`# HELP x_total things
# TYPE x_total counter
x_total{status="ok",tenant="a"} 2
x_total{status="error",tenant="b"} 1
x_total{status="ok",xtenant="c"} 4
x_total{xstatus="ok",msg="a,tenant="} 8
x_total_other 9
y 1.5
h_bucket{le="+Inf"} 3
h_count 3
bad{a="b"} not-a-number
`))
	var se *promtext.SyntaxError
	if !errors.As(err, &se) || se.Line != 11 || se.More != 0 {
		t.Fatalf("error %v, want a *SyntaxError on line 11 only", err)
	}
	for _, c := range []struct {
		name  string
		match []string
		want  float64
	}{
		{"x_total", nil, 15}, // x_total_other is another metric
		// xstatus is another label: the old substring match counted it.
		{"x_total", []string{`status="ok"`}, 6},
		{"x_total", []string{`status="ok"`, `tenant="a"`}, 2},
		{"x_total", []string{`status="ok",tenant="a"`}, 2},
		{"x_total", []string{`tenant="a"`, `status="error"`}, 0},
		{"x_total", []string{`msg="a,tenant="`}, 8},
		{"h_bucket", []string{`le="+Inf"`}, 3},
		{"h_count", nil, 3},
		{"y", nil, 1.5},
		{"z", nil, 0},
		{"bad", nil, 0},
	} {
		if got := page.Sum(c.name, c.match...); got != c.want {
			t.Errorf("Sum(%s, %q) = %v, want %v", c.name, c.match, got, c.want)
		}
	}
	for _, c := range []struct {
		series string
		want   float64
		ok     bool
	}{
		{`x_total{tenant="a",status="ok"}`, 2, true}, // labels in any order
		{`x_total{ status="ok" , tenant="a" }`, 2, true},
		{`x_total{status="ok"}`, 0, false}, // exact: a subset is not the series
		{`y`, 1.5, true},
		{`y{}`, 1.5, true},
		{`x_total`, 0, false},
		{`x_total{status="ok",tenant="a"} 2`, 0, false}, // not a series alone
		{`bad{a="b"}`, 0, false},
	} {
		if got, ok := page.Value(c.series); got != c.want || ok != c.ok {
			t.Errorf("Value(%s) = %v, %v; want %v, %v", c.series, got, ok, c.want, c.ok)
		}
	}
	if !page.Has("y") || page.Has("bad") || page.Has("z") || page.Has("x_tot") {
		t.Errorf("Has: y %v, bad %v, z %v, x_tot %v", page.Has("y"), page.Has("bad"), page.Has("z"), page.Has("x_tot"))
	}
	wantSeries := []string{`x_total{status="ok",tenant="a"}`, `x_total{status="error",tenant="b"}`,
		`x_total{status="ok",xtenant="c"}`, `x_total{xstatus="ok",msg="a,tenant="}`}
	if got := page.Series("x_total"); !slices.Equal(got, wantSeries) {
		t.Errorf("Series(x_total) = %q, want %q", got, wantSeries)
	}
	// The old reader found tenant="}" in msg's value; xtenant is another
	// label.
	values, without := page.LabelValues("x_total", "tenant")
	if !reflect.DeepEqual(values, map[string]bool{"a": true, "b": true}) || without != 2 {
		t.Errorf("LabelValues(x_total, tenant) = %v, %d without; want a and b, 2 without", values, without)
	}
	var zero promtext.Page
	if zero.Has("x") || zero.Sum("x") != 0 || len(zero.Samples()) != 0 {
		t.Error("the zero Page is not empty")
	}
}

// A Sum match that is not name="value" pairs is the caller's mistake:
// it panics rather than quietly summing nothing.
func TestPage_SumBadMatchPanics(t *testing.T) {
	page, _ := promtext.Parse([]byte("x{a=\"1\"} 1\n"))
	for _, m := range []string{`a=1`, `a`, ``, `a="1"}`, `a="1"} x{b="2"`} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Sum(x, %q) did not panic", m)
				}
			}()
			page.Sum("x", m)
		}()
	}
}

// Series writes a sample back as it is read: escapes and quoted names
// survive the trip.
func TestSample_SeriesRoundTrip(t *testing.T) {
	for _, s := range []promtext.Sample{
		{Name: "x"},
		{Name: "x", Labels: []L{{"a", `q"uo\te` + "\n}"}}},
		{Name: "my.metric", Labels: []L{{"label.x", "v"}}},
		{Name: "my.metric"},
	} {
		line := s.Series() + " 1"
		page, err := promtext.Parse([]byte(line))
		if err != nil || len(page.Samples()) != 1 {
			t.Fatalf("%s: %v, %d samples", line, err, len(page.Samples()))
		}
		got := page.Samples()[0]
		if got.Name != s.Name || !slices.Equal(got.Labels, s.Labels) {
			t.Errorf("%s read back as %+v", line, got)
		}
	}
}

// FuzzParse: whatever the text, Parse does not panic, its error is a
// *SyntaxError, every sample is found again by its series, and the
// samples written back as a page read back the same, without error.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"# HELP x h\n# TYPE x counter\nx{a=\"1\",b=\"2\"} 3\n",
		`x{msg="say \"hi\" } now",p="C:\\"} 7 1700000000000 # {t="x"} 1` + "\n",
		"{\"a.b\",\"c.d\"=\"e\"} NaN\n",
		"x +Inf\ny -Inf\nz 1e999\nw 0x1p3\n",
		"x{a=\"1\",} 1\r\nx{a=\"1\"} 2\n",
		"x{a=\"\\q\"} 1\nx{\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		page, err := promtext.Parse(text)
		var se *promtext.SyntaxError
		if err != nil && !errors.As(err, &se) {
			t.Fatalf("error %T %v, want a *SyntaxError", err, err)
		}
		var b strings.Builder
		for _, s := range page.Samples() {
			if v, ok := page.Value(s.Series()); !ok || !sameFloat(v, s.Value) {
				t.Fatalf("Value(%s) = %v, %v; want %v", s.Series(), v, ok, s.Value)
			}
			page.Sum(s.Name)
			b.WriteString(s.Series() + " " + strconv.FormatFloat(s.Value, 'g', -1, 64))
			if s.Timestamp != 0 {
				b.WriteString(" " + strconv.FormatInt(s.Timestamp, 10))
			}
			b.WriteByte('\n')
		}
		again, err := promtext.Parse([]byte(b.String()))
		if err != nil {
			t.Fatalf("written back:\n%s\n%v", b.String(), err)
		}
		if !sameSamples(again.Samples(), page.Samples()) {
			t.Fatalf("written back:\n%s\nread %+v, want %+v", b.String(), again.Samples(), page.Samples())
		}
	})
}

func sameSamples(a, b []promtext.Sample) bool {
	return slices.EqualFunc(a, b, func(x, y promtext.Sample) bool {
		return x.Name == y.Name && slices.Equal(x.Labels, y.Labels) && sameFloat(x.Value, y.Value) && x.Timestamp == y.Timestamp
	})
}

func sameFloat(a, b float64) bool { return a == b || math.IsNaN(a) && math.IsNaN(b) }

// BenchmarkParse reads a page shaped like a node's /metrics: labelled
// counters and histograms plus the Go and process collectors' series
// (about 2,000 lines, 200 KB).
func BenchmarkParse(b *testing.B) {
	var page strings.Builder
	for f := 0; f < 10; f++ {
		fmt.Fprintf(&page, "# HELP agentos_h%d_ms a histogram\n# TYPE agentos_h%d_ms histogram\n", f, f)
		for s := 0; s < 10; s++ {
			for _, le := range []string{"1", "5", "10", "25", "50", "100", "250", "500", "1000", "2500", "5000", "+Inf"} {
				fmt.Fprintf(&page, "agentos_h%d_ms_bucket{stack=\"stack-a\",tenant=\"tnt_%d\",le=\"%s\"} %d\n", f, s, le, s*7)
			}
			fmt.Fprintf(&page, "agentos_h%d_ms_sum{stack=\"stack-a\",tenant=\"tnt_%d\"} 123.5\n", f, s)
			fmt.Fprintf(&page, "agentos_h%d_ms_count{stack=\"stack-a\",tenant=\"tnt_%d\"} 17\n", f, s)
		}
	}
	for i := 0; i < 60; i++ {
		fmt.Fprintf(&page, "# HELP go_stat_%d a gauge\n# TYPE go_stat_%d gauge\ngo_stat_%d 1.2345e+06\n", i, i, i)
	}
	page.WriteString("process_cpu_seconds_total 12.5\nprocess_resident_memory_bytes 4.2e+07\n")
	text := []byte(page.String())
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		p, err := promtext.Parse(text)
		if err != nil || !p.Has("process_cpu_seconds_total") {
			b.Fatal(err)
		}
	}
}
