// Command bench measures what the sidecar costs, each figure next to its
// baseline in the same run, against the real processes on loopback.
//
// It starts the sandbox upstream and the sidecar (with its flow plugins)
// from the built binaries (make build), on SQLite and then on PostgreSQL,
// with reverse queries held off so that they do not mix in, and a local
// webhook receiver as the application. It then measures
//
//   - CPU per create of the sidecar's processes (host and each plugin,
//     from /proc/<pid>/stat; the sandbox's apart) in closed loops at
//     concurrency 1, 8 and 64, divided by the thread CPU time of one
//     RSA-2048 signature and one verification measured in this process;
//   - create throughput through the sidecar divided by that of the same
//     signed order sent straight to the sandbox by an in-process nkp.Client;
//   - the latency the sidecar adds at a fixed open-loop rate of 50/s;
//   - durable notification ingest from 64 concurrent senders, on SQLite and
//     PostgreSQL, divided by the store's raw single-row commit rate;
//   - notification → application 2xx latency at 20/s;
//   - the flow plugin's resident memory after 1,000 payments and its start
//     → ready time;
//
// repeats each figure (median, min–max) and prints the table of the
// performance targets with the load average.
//
//	make build && go run ./internal/cmd/bench
//	go run ./internal/cmd/bench -smoke   # seconds long: every row, no meaning
//	go run ./internal/cmd/bench -only ingest,plugin   # some rows only
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "bin", "directory with paysidecar and plugins/")
	flag.BoolVar(&o.smoke, "smoke", false, "run a seconds-long version (checks that every figure is produced; its numbers mean nothing)")
	flag.IntVar(&o.repeats, "repeats", 3, "repeats of each figure")
	flag.StringVar(&o.profile, "profile", "", "save CPU profiles of the host (closed loop at concurrency 8, ingest on each store) in this directory; needs admin.pprof")
	flag.StringVar(&o.postgres, "postgres", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "PostgreSQL server for the PostgreSQL figures (empty: skip them)")
	flag.Func("env", "set `NAME=value` in the sidecar's environment, after the program's own (repeatable), e.g. PAYSIDECAR_PLUGINS__GOMAXPROCS=0 to compare a setting with its default", func(v string) error {
		if name, _, ok := strings.Cut(v, "="); !ok || !strings.HasPrefix(name, "PAYSIDECAR_") && !strings.HasPrefix(name, "GO") {
			return fmt.Errorf("want PAYSIDECAR_…=value or GO…=value, got %q", v)
		}
		o.env = append(o.env, v)
		return nil
	})
	only := flag.String("only", "", "measure only these parts, comma-separated: "+strings.Join(parts, ", ")+" (empty: all); the other rows say not measured")
	flag.Parse()
	var err error
	if o.only, err = parseOnly(*only); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	log.SetFlags(log.Ltime)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// options are the command line.
type options struct {
	bin      string
	smoke    bool
	repeats  int
	postgres string
	profile  string
	only     map[string]bool // nil: every part
	// env is extra environment of the sidecar ("NAME=value"), set last,
	// so that one setting can be compared with another run.
	env []string
}

// The parts of a run that -only selects.
const (
	partCreate   = "create"   // closed loops: CPU per create and throughput
	partLatency  = "latency"  // the open loop at 50/s
	partIngest   = "ingest"   // notification ingest on each store
	partDelivery = "delivery" // notification → application at 20/s
	partPlugin   = "plugin"   // the flow plugin's memory and start-up
)

var parts = []string{partCreate, partLatency, partIngest, partDelivery, partPlugin}

// parseOnly reads -only: nil for every part.
func parseOnly(s string) (map[string]bool, error) {
	if s == "" {
		return nil, nil
	}
	m := map[string]bool{}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if !slices.Contains(parts, f) {
			return nil, fmt.Errorf("-only: unknown part %q (known: %s)", f, strings.Join(parts, ", "))
		}
		m[f] = true
	}
	return m, nil
}

// measures reports whether the run measures part.
func (o options) measures(part string) bool { return o.only == nil || o.only[part] }

// plan is how long and how much each figure runs.
type plan struct {
	repeats     int
	closedFor   time.Duration // each closed loop
	openFor     time.Duration // each open loop at 50/s
	rsaPairs    int           // sign+verify pairs of the RSA baseline
	notices     int           // notifications per ingest run on SQLite
	noticesPG   int           // notifications per ingest run on PostgreSQL
	rawFor      time.Duration // each raw commit run
	deliverFor  time.Duration // each run at 20/s
	rssPayments int           // payments before the plugin's RSS is read
}

func (o options) plan() plan {
	if o.smoke {
		return plan{repeats: 1, closedFor: 300 * time.Millisecond, openFor: 400 * time.Millisecond, rsaPairs: 5,
			notices: 40, noticesPG: 40, rawFor: 200 * time.Millisecond, deliverFor: 500 * time.Millisecond, rssPayments: 20}
	}
	return plan{repeats: max(o.repeats, 1), closedFor: 4 * time.Second, openFor: 8 * time.Second, rsaPairs: 200,
		notices: 1000, noticesPG: 500, rawFor: 2 * time.Second, deliverFor: 8 * time.Second, rssPayments: 1000}
}

// run measures every figure and writes the report to out.
func run(ctx context.Context, o options, out io.Writer) error {
	p := o.plan()
	dir, err := os.MkdirTemp("", "paysidecar-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin, err := filepath.Abs(o.bin)
	if err != nil {
		return err
	}
	var prof *profiler
	if o.profile != "" {
		if err := os.MkdirAll(o.profile, 0o755); err != nil {
			return err
		}
		prof = &profiler{dir: o.profile}
	}
	r := &results{began: time.Now(), loadBefore: loadAverage(), smoke: o.smoke, repeats: p.repeats, env: o.env}

	sb, err := startSandbox(bin, dir)
	if err != nil {
		return err
	}
	defer sb.stop()

	sq, err := startSidecar(ctx, bin, filepath.Join(dir, "sqlite"), sb, slices.Concat(storeSQLite(filepath.Join(dir, "sqlite", "paysidecar.db")), prof.env(), o.env))
	if err != nil {
		return err
	}
	defer sq.stop()
	sq.pool.rssAt = p.rssPayments
	if err := measureSQLite(ctx, o, p, sb, sq, prof, r); err != nil {
		return err
	}
	sq.stop()

	if o.postgres != "" && o.measures(partIngest) {
		pg, err := newPostgresStore(ctx, o.postgres)
		if err != nil {
			return err
		}
		defer pg.drop()
		sp, err := startSidecar(ctx, bin, filepath.Join(dir, "postgres"), sb, slices.Concat(pg.env(), prof.env(), o.env))
		if err != nil {
			return err
		}
		defer sp.stop()
		if err := measureIngest(ctx, p.repeats, p.noticesPG, p.rawFor, sb, sp, pg, prof, "host-ingest-postgres", &r.ingestPG); err != nil {
			return fmt.Errorf("postgres ingest: %w", err)
		}
		sp.stop()
	}
	r.loadAfter = loadAverage()
	r.took = time.Since(r.began)
	r.write(out)
	return nil
}

// measureSQLite runs every figure that uses the SQLite sidecar.
func measureSQLite(ctx context.Context, o options, p plan, sb *sandboxProc, sc *sidecarProc, prof *profiler, r *results) error {
	steps := []struct {
		part, what string
		run        func() error
	}{
		{partCreate, "create: closed loops at concurrency 1, 8, 64", func() error { return measureClosed(ctx, p, sb, sc, prof, r) }},
		{partLatency, "create: open loop at 50/s", func() error { return measureOpen(ctx, p, sb, sc, r) }},
		{partIngest, "notification ingest (SQLite)", func() error {
			return measureIngest(ctx, p.repeats, p.notices, p.rawFor, sb, sc, sqliteRaw(sc.dir), prof, "host-ingest-sqlite", &r.ingestSQLite)
		}},
		{partDelivery, "notification → application at 20/s", func() error { return measureDelivery(ctx, p, sb, sc, r) }},
		{partPlugin, "flow plugin memory and start-up", func() error { return measurePlugin(ctx, p, sc, r) }},
	}
	for _, st := range steps {
		if !o.measures(st.part) {
			continue
		}
		log.Printf("%s", st.what)
		if err := st.run(); err != nil {
			return fmt.Errorf("%s: %w", st.what, err)
		}
	}
	return nil
}
