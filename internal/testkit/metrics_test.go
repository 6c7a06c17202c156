package testkit

import (
	"slices"
	"testing"
)

func TestMetrics_SumSeriesLabelValues(t *testing.T) {
	m := ParseMetrics([]byte(`# HELP x_total things
# TYPE x_total counter
x_total{status="ok",tenant="a"} 2
x_total{status="error",tenant="b"} 1
x_total{status="ok",xtenant="c"} 4
x_total_other 9
y 1.5
bad{a="b"} not-a-number
`))
	if got := m.Sum("x_total"); got != 7 {
		t.Errorf("Sum(x_total) = %v, want 7 (x_total_other is another metric)", got)
	}
	if got := m.Sum("x_total", `status="ok"`); got != 6 {
		t.Errorf(`Sum(x_total, status="ok") = %v, want 6`, got)
	}
	if got := m.Sum("y"); got != 1.5 || !m.Has("y") || m.Has("bad") || m.Has("z") {
		t.Errorf("y %v, Has(y) %v, Has(bad) %v, Has(z) %v", got, m.Has("y"), m.Has("bad"), m.Has("z"))
	}
	series := m.Series("x_total")
	slices.Sort(series)
	if len(series) != 3 {
		t.Errorf("Series(x_total) = %v", series)
	}
	values, without := m.LabelValues("x_total", "tenant")
	if len(values) != 2 || !values["a"] || !values["b"] || without != 1 {
		t.Errorf("LabelValues(x_total, tenant) = %v, %d without; want a and b, 1 without (xtenant is another label)", values, without)
	}
}
