package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
)

// Verdicts.
const (
	Meets  = "meets"
	Misses = "misses"
	NA     = "n/a"
)

// Row is one line of the table. Values holds the raw numbers behind the
// text, for the JSON file and for comparing runs.
type Row struct {
	Name     string             `json:"row"`
	Figure   string             `json:"figure"`
	Baseline string             `json:"baseline"`
	Goal     string             `json:"goal"`
	Verdict  string             `json:"verdict"`
	Why      string             `json:"why,omitempty"` // for n/a and misses
	Values   map[string]float64 `json:"values,omitempty"`
}

// notRun is a row that could not run, saying why.
func notRun(name, goal, why string) Row {
	return Row{Name: name, Figure: "not measured", Baseline: "—", Goal: goal, Verdict: NA, Why: why}
}

// Report is the whole run.
type Report struct {
	Machine Machine        `json:"machine"`
	Sizes   map[string]any `json:"sizes"`
	Rows    []Row          `json:"rows"`
	Notes   []string       `json:"notes,omitempty"`
	Seconds float64        `json:"seconds"`
}

// check is one condition of a goal and what to say when it fails.
type check struct {
	ok   bool
	miss string
}

func need(ok bool, format string, args ...any) check {
	return check{ok: ok, miss: fmt.Sprintf(format, args...)}
}

// judge is Meets when every check holds, else Misses with the failures.
func judge(checks ...check) (verdict, why string) {
	var misses []string
	for _, c := range checks {
		if !c.ok {
			misses = append(misses, c.miss)
		}
	}
	if len(misses) > 0 {
		return Misses, strings.Join(misses, "; ")
	}
	return Meets, ""
}

// caveat adds a condition the verdict was reached under.
func (r *Row) caveat(text string) {
	if r.Why == "" {
		r.Why = text
	} else {
		r.Why += "; " + text
	}
}

func cell(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ")
}

// Markdown writes the header line and the table.
func (r *Report) Markdown(w io.Writer) {
	m := r.Machine
	fmt.Fprintf(w, "Fleetwatch bench, %s: %s, %d cores, %.1f GiB, Linux %s, %s, mosquitto %s.\n",
		m.Date, m.CPU, m.Cores, m.MemoryGiB, m.Kernel, m.Go, m.Mosquitto)
	if s, ok := r.Sizes["text"].(string); ok {
		fmt.Fprintf(w, "Sizes: %s.\n", s)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| row | figure | baseline (same run) | goal | verdict |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	for _, row := range r.Rows {
		v := row.Verdict
		if row.Why != "" {
			v += ": " + row.Why
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", cell(row.Name), cell(row.Figure), cell(row.Baseline), cell(row.Goal), cell(v))
	}
	if len(r.Notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range r.Notes {
			fmt.Fprintf(w, "- %s\n", n)
		}
	}
}

// WriteJSON writes the report to path. NaN and infinities (a figure with
// no samples) become null, which JSON can carry.
func (r *Report) WriteJSON(path string) error {
	for i := range r.Rows {
		for k, v := range r.Rows[i].Values {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				delete(r.Rows[i].Values, k)
			}
		}
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// ms formats milliseconds for the table.
func ms(v float64) string {
	switch {
	case math.IsNaN(v):
		return "–"
	case v < 10:
		return fmt.Sprintf("%.2f ms", v)
	default:
		return fmt.Sprintf("%.0f ms", v)
	}
}

func distText(d Dist) string {
	return fmt.Sprintf("p50 %s, p99 %s, max %s (n=%d)", strings.TrimSuffix(ms(d.P50), " ms"), strings.TrimSuffix(ms(d.P99), " ms"), ms(d.Max), d.N)
}

// kb formats kibibytes.
func kb(v float64) string {
	if math.Abs(v) >= 10 {
		return fmt.Sprintf("%.0f KB", v)
	}
	return fmt.Sprintf("%.1f KB", v)
}

func mb(kib float64) string { return fmt.Sprintf("%.1f MB", kib/1024) }
