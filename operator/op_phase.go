package operator

import (
	"fmt"
	"io"
	"time"
)

// progress prints an operator action's phases live and records them in
// the action's report.
type progress struct {
	out    io.Writer
	report *Report
	total  int
	idx    int
}

// phase is the running phase: checks print as they finish.
type phase struct {
	p   *progress
	res *PhaseResult
	// sink, when set, also receives each check (report.Health/Smoke).
	sink *[]Check
}

func ms(d time.Duration) int64 { return d.Milliseconds() }

// fmtDur prints a duration the way operators read it.
func fmtDur(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%d ms", d.Milliseconds())
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

// run runs one phase: header, its checks, and a closing line with the
// summary and time. A failing phase returns its error.
func (p *progress) run(name string, fn func(ph *phase) error) error {
	p.idx++
	fmt.Fprintf(p.out, "[%d/%d] %s\n", p.idx, p.total, name)
	res := PhaseResult{Name: name, Status: "ok", Checks: []Check{}}
	ph := &phase{p: p, res: &res}
	start := time.Now()
	err := fn(ph)
	d := time.Since(start)
	res.DurationMS = ms(d)
	if err != nil {
		res.Status = "failed"
		if res.Summary == "" {
			res.Summary = err.Error()
		}
		fmt.Fprintf(p.out, "      %s FAILED (%s): %v\n", name, fmtDur(d), err)
	} else {
		sum := res.Summary
		if sum != "" {
			sum = ": " + sum
		}
		fmt.Fprintf(p.out, "      %s ok%s (%s)\n", name, sum, fmtDur(d))
	}
	if p.report != nil {
		p.report.Phases = append(p.report.Phases, res)
	}
	return err
}

// check times fn and prints one line; detail is what it found.
func (ph *phase) check(name string, fn func() (string, error)) error {
	start := time.Now()
	detail, err := fn()
	d := time.Since(start)
	c := Check{Name: name, Status: "ok", DurationMS: ms(d), Detail: detail}
	mark := "ok  "
	if err != nil {
		c.Status, c.Detail, mark = "failed", err.Error(), "FAIL"
	}
	ph.record(c)
	line := name
	if c.Detail != "" {
		line += " — " + c.Detail
	}
	fmt.Fprintf(ph.p.out, "      %s %s (%s)\n", mark, line, fmtDur(d))
	return err
}

// skip records a check that could not run.
func (ph *phase) skip(name, why string) {
	ph.record(Check{Name: name, Status: "skipped", Detail: why})
	fmt.Fprintf(ph.p.out, "      skip %s — %s\n", name, why)
}

func (ph *phase) record(c Check) {
	ph.res.Checks = append(ph.res.Checks, c)
	if ph.sink != nil {
		*ph.sink = append(*ph.sink, c)
	}
}

// note prints an informational line under the phase.
func (ph *phase) note(format string, args ...any) {
	fmt.Fprintf(ph.p.out, "      "+format+"\n", args...)
}

// summarize sets the phase's closing summary (the real counts).
func (ph *phase) summarize(format string, args ...any) { ph.res.Summary = fmt.Sprintf(format, args...) }
