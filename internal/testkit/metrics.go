package testkit

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// Metrics is a Prometheus text exposition read into samples: the series
// as written (`name` or `name{label="v",…}`) → its value. Comment lines
// and lines whose value does not parse are left out.
type Metrics map[string]float64

// ParseMetrics reads a Prometheus text exposition.
func ParseMetrics(text []byte) Metrics {
	m := Metrics{}
	for line := range strings.SplitSeq(string(text), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			m[line[:i]] = v
		}
	}
	return m
}

// Scrape reads url (a /metrics path) with client (nil:
// http.DefaultClient), failing the test unless it answers 200.
func Scrape(t testing.TB, client *http.Client, url string) Metrics {
	t.Helper()
	return ParseMetrics(DoWith(t, client, "GET", url, "", nil).Expect(t, "scrape "+url, 200).Body)
}

// Sum adds the samples of the metric name whose label sets hold every one
// of labels (each written as in the exposition, `status="ok"`); 0 when
// there are none.
func (m Metrics) Sum(name string, labels ...string) float64 {
	total := 0.0
	for series, v := range m {
		if set, ok := m.labelsOf(series, name); ok && hasAll(set, labels) {
			total += v
		}
	}
	return total
}

// Series lists the samples of the metric name (every label set).
func (m Metrics) Series(name string) []string {
	var out []string
	for series := range m {
		if _, ok := m.labelsOf(series, name); ok {
			out = append(out, series)
		}
	}
	return out
}

// Has says whether the metric name has at least one sample.
func (m Metrics) Has(name string) bool { return len(m.Series(name)) > 0 }

// LabelValues lists the values label takes across the samples of the
// metric name, and how many samples lack it.
func (m Metrics) LabelValues(name, label string) (values map[string]bool, without int) {
	values = map[string]bool{}
	for series := range m {
		set, ok := m.labelsOf(series, name)
		if !ok {
			continue
		}
		v, found := labelValue(set, label)
		if !found {
			without++
			continue
		}
		values[v] = true
	}
	return values, without
}

// labelsOf is the label set of series ("" when it has none) when series
// is a sample of the metric name.
func (Metrics) labelsOf(series, name string) (string, bool) {
	if series == name {
		return "", true
	}
	rest, ok := strings.CutPrefix(series, name+"{")
	return rest, ok
}

// labelValue finds label's value in a label set (`a="x",b="y"}`).
func labelValue(set, label string) (string, bool) {
	for i := 0; ; {
		j := strings.Index(set[i:], label+`="`)
		if j < 0 {
			return "", false
		}
		at := i + j
		if at == 0 || set[at-1] == ',' {
			v, _, _ := strings.Cut(set[at+len(label)+2:], `"`)
			return v, true
		}
		i = at + 1
	}
}

func hasAll(set string, labels []string) bool {
	for _, l := range labels {
		if !strings.Contains(set, l) {
			return false
		}
	}
	return true
}
