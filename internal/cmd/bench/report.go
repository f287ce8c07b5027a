package main

import (
	"fmt"
	"io"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/paysidecar/paysidecar/internal/localproc"
)

// results is everything one run measured.
type results struct {
	began                 time.Time
	took                  time.Duration
	smoke                 bool
	repeats               int
	loadBefore, loadAfter string
	env                   []string // the sidecar's extra environment (-env)

	rsa                    []float64 // sign + verify, ms, one per repeat
	idleCPU                float64   // host + plugins, ms per second, idle
	idleFor                time.Duration
	idleProcs              int // processes idleCPU sums
	closed                 map[int][]closedRun
	open                   []openRun
	ingestSQLite, ingestPG []ingestRun
	deliver                [][]time.Duration
	plugin                 pluginRun
}

// summary is the median and range of a figure's repeats.
type summary struct{ median, min, max float64 }

func summarize(v []float64) summary {
	if len(v) == 0 {
		return summary{}
	}
	s := slices.Clone(v)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return summary{median: m, min: s[0], max: s[len(s)-1]}
}

// format writes the median with the range in brackets, e.g. "5.5 (5.1–6.0)",
// each with verb.
func (s summary) format(verb string) string {
	return fmt.Sprintf(verb+" ("+verb+"–"+verb+")", s.median, s.min, s.max)
}

// each maps the repeats through f.
func each[T any](runs []T, f func(T) float64) []float64 {
	out := make([]float64, len(runs))
	for i, r := range runs {
		out[i] = f(r)
	}
	return out
}

// Row names: the smoke test requires each of them in the output.
const (
	rowCPU        = "CPU per create, host + plugins, ÷ (1 sign + 1 verify)"
	rowThroughput = "create throughput through the sidecar ÷ the same signed order sent by an in-process Go client"
	rowLatency    = "added latency at 50 requests/s, p50 / p99"
	rowIngestSQL  = "durable notification ingest, 64 concurrent senders, SQLite"
	rowIngestPG   = "durable notification ingest, 64 concurrent senders, PostgreSQL"
	rowDeliver    = "notification → application 2xx at 20/s, p50 / p99"
	rowRSS        = "flow plugin RSS after 1,000 payments"
	rowReady      = "flow plugin start → ready"
)

// rows lists every row name, in the table's order.
var rows = []string{rowCPU, rowThroughput, rowLatency, rowIngestSQL, rowIngestPG, rowDeliver, rowRSS, rowReady}

// write prints the report: the table of targets, then the details.
func (r *results) write(out io.Writer) {
	fmt.Fprintf(out, "# paysidecar load benchmark\n\n")
	if r.smoke {
		fmt.Fprintf(out, "SMOKE RUN: seconds long, its numbers mean nothing.\n\n")
	}
	fmt.Fprintf(out, "%s, %d CPUs (%s), %s, load average %s before and %s after, %s, median of %d repeats (min–max)\n\n",
		r.began.UTC().Format("2006-01-02 15:04 MST"), runtime.NumCPU(), cpuModel(), runtime.Version(), r.loadBefore, r.loadAfter,
		r.took.Round(time.Second), r.repeats)
	if len(r.env) > 0 {
		fmt.Fprintf(out, "The sidecar ran with %s.\n\n", strings.Join(r.env, " "))
	}
	fmt.Fprintln(out, "| measure | sidecar | baseline (same run) | ratio | target |")
	fmt.Fprintln(out, "| --- | --- | --- | --- | --- |")
	for _, line := range r.tableRows() {
		fmt.Fprintln(out, line)
	}
	fmt.Fprintln(out)
	r.writeDetails(out)
}

// tableRows are the lines of the table of targets.
func (r *results) tableRows() []string {
	var cpu, ratio, thr, thrBase, thrRatio, clientRatio []string
	for _, c := range concurrencies {
		runs := r.closed[c]
		cpu = append(cpu, fmt.Sprintf("c=%d: %s ms", c, summarize(each(runs, closedRun.sidecarCPU)).format("%.2f")))
		ratio = append(ratio, fmt.Sprintf("c=%d: %s×", c, summarize(each(runs, closedRun.ratio)).format("%.1f")))
		clientRatio = append(clientRatio, fmt.Sprintf("c=%d: %.1f×", c, summarize(each(runs, func(x closedRun) float64 { return x.cpu["client"] / x.rsa })).median))
		thr = append(thr, fmt.Sprintf("c=%d: %s/s", c, summarize(each(runs, func(x closedRun) float64 { return x.sidecar.perSecond() })).format("%.0f")))
		thrBase = append(thrBase, fmt.Sprintf("c=%d: %s/s", c, summarize(each(runs, func(x closedRun) float64 { return x.direct.perSecond() })).format("%.0f")))
		thrRatio = append(thrRatio, fmt.Sprintf("c=%d: %s", c, summarize(each(runs, func(x closedRun) float64 { return x.sidecar.perSecond() / x.direct.perSecond() })).format("%.2f")))
	}
	p := func(q float64, side bool) []float64 {
		return each(r.open, func(o openRun) float64 {
			if side {
				return ms(percentile(o.sidecar, q))
			}
			return ms(percentile(o.direct, q))
		})
	}
	added := func(q float64) summary {
		return summarize(each(r.open, func(o openRun) float64 { return ms(percentile(o.sidecar, q) - percentile(o.direct, q)) }))
	}
	ingest := func(name string, runs []ingestRun, target string) string {
		if len(runs) == 0 {
			return fmt.Sprintf("| %s | not measured | | | %s |", name, target)
		}
		return fmt.Sprintf("| %s | %s/s | raw single-row commits %s/s | %s× | %s |", name,
			summarize(each(runs, func(x ingestRun) float64 { return x.perSecond })).format("%.0f"),
			summarize(each(runs, func(x ingestRun) float64 { return x.raw })).format("%.0f"),
			summarize(each(runs, func(x ingestRun) float64 { return x.perSecond / x.raw })).format("%.2f"), target)
	}
	dl := func(q float64) summary {
		return summarize(each(r.deliver, func(l []time.Duration) float64 { return ms(percentile(l, q)) }))
	}
	notMeasured := func(name, target string) string { return fmt.Sprintf("| %s | not measured | | | %s |", name, target) }
	lines := []string{
		fmt.Sprintf("| %s | %s | 1 sign + 1 verify %s ms thread CPU; in-process Go client %s | %s | ≤ 1.5× |", rowCPU,
			strings.Join(cpu, "; "), summarize(r.rsa).format("%.2f"), strings.Join(clientRatio, ", "), strings.Join(ratio, "; ")),
		fmt.Sprintf("| %s | %s | direct %s | %s | ≥ 0.8 |", rowThroughput, strings.Join(thr, "; "), strings.Join(thrBase, "; "), strings.Join(thrRatio, "; ")),
		fmt.Sprintf("| %s | %s / %s ms | direct %s / %s ms | +%s / +%s ms | ≤ 1 ms / ≤ 3 ms |", rowLatency,
			summarize(p(50, true)).format("%.1f"), summarize(p(99, true)).format("%.1f"),
			summarize(p(50, false)).format("%.1f"), summarize(p(99, false)).format("%.1f"),
			added(50).format("%.1f"), added(99).format("%.1f")),
		ingest(rowIngestSQL, r.ingestSQLite, "≥ 8,000/s"),
		ingest(rowIngestPG, r.ingestPG, "≥ 3,000/s"),
		fmt.Sprintf("| %s | %s / %s ms | | | ≤ 5 ms / ≤ 25 ms |", rowDeliver, dl(50).format("%.1f"), dl(99).format("%.1f")),
		fmt.Sprintf("| %s | %.1f MiB after %d payments | | | ≤ 20 MiB |", rowRSS, r.plugin.rssMiB, r.plugin.payments),
		fmt.Sprintf("| %s | %s ms | | | ≤ 500 ms |", rowReady, summarize(r.plugin.ready).format("%.0f")),
	}
	if len(r.closed) == 0 {
		lines[0], lines[1] = notMeasured(rowCPU, "≤ 1.5×"), notMeasured(rowThroughput, "≥ 0.8")
	}
	if len(r.open) == 0 {
		lines[2] = notMeasured(rowLatency, "≤ 1 ms / ≤ 3 ms")
	}
	if len(r.deliver) == 0 {
		lines[5] = notMeasured(rowDeliver, "≤ 5 ms / ≤ 25 ms")
	}
	if r.plugin.payments == 0 {
		lines[6], lines[7] = notMeasured(rowRSS, "≤ 20 MiB"), notMeasured(rowReady, "≤ 500 ms")
	}
	return lines
}

// writeDetails prints CPU per create by process and the errors seen.
func (r *results) writeDetails(out io.Writer) {
	if len(r.closed) == 0 {
		return
	}
	fmt.Fprintln(out, "CPU per create by process, ms (median of repeats; client and sandbox (direct): this program and the sandbox per order of the direct nkp.Client):")
	fmt.Fprintln(out)
	var names []string
	for _, runs := range r.closed {
		for _, run := range runs {
			for name := range run.cpu {
				if !slices.Contains(names, name) {
					names = append(names, name)
				}
			}
		}
		break
	}
	sort.Strings(names)
	fmt.Fprintf(out, "| concurrency | %s | host + plugins ÷ RSA |\n", strings.Join(names, " | "))
	fmt.Fprintf(out, "| ---: |%s ---: |\n", strings.Repeat(" ---: |", len(names)))
	for _, c := range concurrencies {
		runs := r.closed[c]
		var cells []string
		var errs int64
		for _, name := range names {
			cells = append(cells, fmt.Sprintf("%.2f", summarize(each(runs, func(x closedRun) float64 { return x.cpu[name] })).median))
		}
		for _, run := range runs {
			errs += run.sidecar.errs + run.direct.errs
		}
		fmt.Fprintf(out, "| %d | %s | %.1f× |\n", c, strings.Join(cells, " | "), summarize(each(runs, closedRun.ratio)).median)
		if errs > 0 {
			fmt.Fprintf(out, "\n%d requests failed at concurrency %d (first: %v)\n\n", errs, c, firstErr(runs))
		}
	}
	fmt.Fprintln(out, "\nContext switches per create by process (median of repeats; each is a thread that waited and woke, or was preempted):")
	fmt.Fprintln(out)
	var procs []string
	for _, name := range names {
		if name != "client" && name != "sandbox (direct)" {
			procs = append(procs, name)
		}
	}
	fmt.Fprintf(out, "| concurrency | %s |\n", strings.Join(procs, " | "))
	fmt.Fprintf(out, "| ---: |%s\n", strings.Repeat(" ---: |", len(procs)))
	for _, c := range concurrencies {
		var cells []string
		for _, name := range procs {
			cells = append(cells, fmt.Sprintf("%.1f", summarize(each(r.closed[c], func(x closedRun) float64 { return x.switches[name] })).median))
		}
		fmt.Fprintf(out, "| %d | %s |\n", c, strings.Join(cells, " | "))
	}
	fmt.Fprintf(out, "\nIdle, between requests, the host and its plugins used %.1f ms of CPU per second over %s (to ±%.1f ms per second: /proc counts each process's CPU in 10 ms ticks).\n\n",
		r.idleCPU, r.idleFor, float64(r.idleProcs)*10/r.idleFor.Seconds())
}

// firstErr is the first error of runs.
func firstErr(runs []closedRun) error {
	for _, r := range runs {
		if r.sidecar.firstErr != nil {
			return r.sidecar.firstErr
		}
		if r.direct.firstErr != nil {
			return r.direct.firstErr
		}
	}
	return nil
}

// loadAverage is /proc/loadavg's three figures.
func loadAverage() string { return localproc.LoadAverage() }
