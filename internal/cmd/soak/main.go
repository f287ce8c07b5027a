// Command soak runs the sidecar for a long while under a mixed load and
// records whether anything in it grows without bound.
//
// It starts the sandbox upstream and the sidecar as two processes from the
// built binaries (make build), with SQLite and the three flow plugins, an
// in-process webhook receiver, and the sandbox sending every third
// notification twice. Workers then create payments, pay or fail them in
// the sandbox (which notifies), refund some, query, and post captured
// notifications again; once, a third of the way in, a flow plugin is
// killed. Every interval it samples the sidecar process: goroutines (from
// /metrics), open files and resident memory (from /proc), the plugins'
// resident memory, the size of the store's files, and what the workload
// has done. It prints the samples as a Markdown table and writes them as
// CSV, then says how each measure moved over the second half.
//
//	make build && go run ./internal/cmd/soak -duration 10m -interval 30s -csv soak.csv
package main

import (
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/paysidecar/paysidecar/internal/localproc"
	"github.com/paysidecar/paysidecar/sandbox"
	"github.com/paysidecar/paysidecar/sdk/client"
)

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "bin", "directory with paysidecar and plugins/")
	flag.DurationVar(&o.duration, "duration", 10*time.Minute, "how long the load runs")
	flag.DurationVar(&o.interval, "interval", 30*time.Second, "time between samples")
	flag.IntVar(&o.workers, "workers", 4, "concurrent workers")
	flag.StringVar(&o.kill, "kill-plugin", "alipay-native", "plugin killed once, a third of the way in (empty: none)")
	flag.StringVar(&o.csv, "csv", "", "write the samples to this CSV file")
	flag.Parse()
	log.SetFlags(log.Ltime)
	if err := run(o); err != nil {
		log.Fatal(err)
	}
}

type options struct {
	bin      string
	duration time.Duration
	interval time.Duration
	workers  int
	kill     string
	csv      string
}

// sample is one row of measurements.
type sample struct {
	elapsed      time.Duration
	goroutines   int
	openFiles    int
	rssMiB       float64
	heapMiB      float64
	pluginsMiB   float64
	storeKiB     int64
	walKiB       int64
	payments     int64
	refunds      int64
	queries      int64
	replays      int64
	webhooks     int64
	errors       int64
	loadAverage1 string
}

// counters are what the workload has done.
type counters struct {
	payments, refunds, queries, replays, webhooks, errors atomic.Int64
}

func run(o options) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir, err := os.MkdirTemp("", "paysidecar-soak-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin, err := filepath.Abs(o.bin)
	if err != nil {
		return err
	}

	var cnt counters
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		cnt.webhooks.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hook.Close()

	sbAddr := localproc.FreePort()
	sb, err := localproc.Start(filepath.Join(bin, "paysidecar"), []string{"sandbox"}, filepath.Join(dir, "sandbox.log"),
		"PAYSIDECAR_SANDBOX__LISTEN="+sbAddr)
	if err != nil {
		return err
	}
	defer sb.Stop()
	sbURL := "http://" + sbAddr
	if err := localproc.WaitHTTP(sbURL+"/_sandbox/", 30*time.Second); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	ctl := &sandbox.ControlClient{BaseURL: sbURL}
	if err := ctl.SetFaults(ctx, sandbox.Faults{Notify: sandbox.NotifyFaults{DuplicateRate: 0.33, ReorderRate: 0.05, ReorderHoldMS: 200}}); err != nil {
		return fmt.Errorf("sandbox faults: %w", err)
	}

	// The upstream calls only ports 8000-9005.
	notify, err := localproc.FreePortIn(8000, 9005)
	if err != nil {
		return err
	}
	api, admin := localproc.FreePort(), localproc.FreePort()
	db := filepath.Join(dir, "paysidecar.db")
	sc, err := localproc.Start(filepath.Join(bin, "paysidecar"), []string{"run"}, filepath.Join(dir, "sidecar.log"),
		"PAYSIDECAR_UPSTREAM__BASE_URL="+sbURL,
		"PAYSIDECAR_API__LISTEN="+api, "PAYSIDECAR_ADMIN__LISTEN="+admin,
		"PAYSIDECAR_NOTIFY__LISTEN="+notify, "PAYSIDECAR_NOTIFY__PUBLIC_URL=http://"+notify+"/notify",
		"PAYSIDECAR_STORE__SQLITE_PATH="+db, "PAYSIDECAR_PLUGINS__DIR="+filepath.Join(bin, "plugins"),
		"PAYSIDECAR_PLUGINS__WECHAT_JSAPI__SETTINGS__API_BASE="+sbURL, "PAYSIDECAR_PLUGINS__WECHAT_JSAPI__SETTINGS__OAUTH_BASE="+sbURL,
		"PAYSIDECAR_PLUGINS__WECHAT_MINIAPP__SETTINGS__API_BASE="+sbURL,
		"PAYSIDECAR_WEBHOOK__URL="+hook.URL+"/hook", "PAYSIDECAR_WEBHOOK__SECRET=whsec_c29hay10ZXN0LXNlY3JldA==",
		"PAYSIDECAR_REQUERY__SCHEDULE=5s,10s,30s,1m", "PAYSIDECAR_LOG__LEVEL=warn")
	if err != nil {
		return err
	}
	defer sc.Stop()
	if err := localproc.WaitHTTP("http://"+admin+"/readyz", 60*time.Second); err != nil {
		return fmt.Errorf("sidecar: %w", err)
	}
	log.Printf("sidecar pid %d, sandbox pid %d, store %s", sc.PID(), sb.PID(), db)

	w := &workload{api: client.New("http://"+api, client.WithHTTPClient(&http.Client{Timeout: 20 * time.Second})),
		ctl: ctl, notify: "http://" + notify + "/notify", cnt: &cnt}
	loadCtx, stopLoad := context.WithTimeout(ctx, o.duration)
	defer stopLoad()
	var wg sync.WaitGroup
	for i := range o.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.loop(loadCtx, rand.New(rand.NewPCG(uint64(i), 7)))
		}()
	}

	var samples []sample
	began := time.Now()
	take := func() {
		s, err := measure(sc.PID(), "http://"+admin, db)
		if err != nil {
			log.Printf("sample: %v", err)
			return
		}
		s.elapsed = time.Since(began).Round(time.Second)
		s.payments, s.refunds, s.queries = cnt.payments.Load(), cnt.refunds.Load(), cnt.queries.Load()
		s.replays, s.webhooks, s.errors = cnt.replays.Load(), cnt.webhooks.Load(), cnt.errors.Load()
		samples = append(samples, s)
		log.Printf("%s goroutines %d, files %d, RSS %.1f MiB (Go heap %.1f), plugins %.1f MiB, store %d KiB (WAL %d), payments %d, errors %d, load %s",
			s.elapsed, s.goroutines, s.openFiles, s.rssMiB, s.heapMiB, s.pluginsMiB, s.storeKiB, s.walKiB, s.payments, s.errors, s.loadAverage1)
	}
	take()
	tick := time.NewTicker(o.interval)
	defer tick.Stop()
	var killAt <-chan time.Time
	if o.kill != "" {
		killAt = time.After(o.duration / 3)
	}
	for loadCtx.Err() == nil {
		select {
		case <-tick.C:
			take()
		case <-killAt:
			if pid := localproc.ChildNamed(sc.PID(), o.kill); pid > 0 {
				log.Printf("killing plugin %s (pid %d)", o.kill, pid)
				_ = syscall.Kill(pid, syscall.SIGKILL)
			} else {
				log.Printf("no %s plugin process found to kill", o.kill)
			}
		case <-loadCtx.Done():
		}
	}
	wg.Wait()
	take()
	w.mu.Lock()
	log.Printf("errors by operation: %v", w.errs)
	w.mu.Unlock()
	if err := report(os.Stdout, samples); err != nil {
		return err
	}
	if o.csv != "" {
		if err := writeCSV(o.csv, samples); err != nil {
			return err
		}
	}
	select {
	case <-sc.Exited:
		return errors.New("the sidecar exited during the soak; see its log")
	default:
	}
	return nil
}

// workload is the mixed load of the soak.
type workload struct {
	api    *client.Client
	ctl    *sandbox.ControlClient
	notify string
	cnt    *counters

	mu       sync.Mutex
	seq      int
	paid     []client.Payment
	captured []url.Values
	errs     map[string]int
}

func (w *workload) loop(ctx context.Context, rnd *rand.Rand) {
	for ctx.Err() == nil {
		var err error
		switch n := rnd.IntN(100); {
		case n < 40:
			err = w.pay(ctx, rnd)
		case n < 50:
			err = w.refund(ctx, rnd)
		case n < 90:
			err = w.query(ctx, rnd)
		default:
			err = w.replay(ctx, rnd)
		}
		if err != nil && ctx.Err() == nil {
			w.cnt.errors.Add(1)
			kind, _, _ := strings.Cut(err.Error(), ":")
			w.mu.Lock()
			if w.errs == nil {
				w.errs = map[string]int{}
			}
			w.errs[kind]++
			first := w.errs[kind] == 1
			w.mu.Unlock()
			if first {
				log.Printf("workload: %v", err)
			}
		}
	}
}

func (w *workload) next() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seq++
	return fmt.Sprintf("soak-%d-%d", time.Now().Unix(), w.seq)
}

// pay creates a payment and has the sandbox pay (or fail) it, which sends
// its notification.
func (w *workload) pay(ctx context.Context, rnd *rand.Rand) error {
	req := client.CreatePaymentRequest{Flow: client.FlowAlipayNative, OutTradeNo: w.next(), AmountFen: int64(100 + rnd.IntN(10000)), Description: "soak"}
	if rnd.IntN(2) == 0 {
		req.Flow, req.Buyer = client.FlowWeChatJSAPI, &client.Buyer{OpenID: "o-soak-buyer"}
	}
	p, err := w.api.CreatePayment(ctx, req)
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	w.cnt.payments.Add(1)
	result := sandbox.ResultPaid
	if rnd.IntN(5) == 0 {
		result = sandbox.ResultFailed
	}
	if _, err := w.ctl.SettlePayment(ctx, sandbox.SettleRequest{HuifuID: p.MerchantID, ReqDate: p.ReqDate, ReqSeqID: p.ReqSeqID, Result: result}); err != nil {
		return fmt.Errorf("settle: %w", err)
	}
	if result == sandbox.ResultPaid {
		w.mu.Lock()
		w.paid = append(w.paid, p)
		if len(w.paid) > 1000 {
			w.paid = w.paid[len(w.paid)-1000:]
		}
		w.mu.Unlock()
	}
	return nil
}

// refund refunds part of a paid payment and settles the refund.
func (w *workload) refund(ctx context.Context, rnd *rand.Rand) error {
	p, ok := w.pick(rnd)
	if !ok {
		return nil
	}
	got, err := w.api.GetPayment(ctx, p.ID)
	if err != nil || got.Status != client.StatusSucceeded || got.AmountFen-got.RefundedFen < 2 {
		return err
	}
	rf, err := w.api.CreateRefund(ctx, p.ID, client.CreateRefundRequest{OutRefundNo: w.next(), AmountFen: 1 + rnd.Int64N((got.AmountFen-got.RefundedFen)/2)})
	if err != nil {
		return fmt.Errorf("refund: %w", err)
	}
	w.cnt.refunds.Add(1)
	if _, err := w.ctl.SettleRefund(ctx, sandbox.SettleRequest{HuifuID: p.MerchantID, ReqDate: rf.ReqDate, ReqSeqID: rf.ReqSeqID, Result: sandbox.ResultSucceeded}); err != nil {
		return fmt.Errorf("settle refund: %w", err)
	}
	return nil
}

// query reads a payment, and now and then captures its notification for
// replay.
func (w *workload) query(ctx context.Context, rnd *rand.Rand) error {
	p, ok := w.pick(rnd)
	if !ok {
		return nil
	}
	if _, err := w.api.GetPayment(ctx, p.ID); err != nil {
		return fmt.Errorf("get: %w", err)
	}
	w.cnt.queries.Add(1)
	if rnd.IntN(10) == 0 {
		recs, err := w.ctl.Notifications(ctx, sandbox.Filter{ReqSeqID: p.ReqSeqID})
		if err != nil {
			return fmt.Errorf("notifications: %w", err)
		}
		for _, r := range recs {
			w.mu.Lock()
			w.captured = append(w.captured, url.Values{"resp_code": {r.RespCode}, "resp_desc": {r.RespDesc}, "resp_data": {r.RespData}, "sign": {r.Sign}})
			if len(w.captured) > 200 {
				w.captured = w.captured[len(w.captured)-200:]
			}
			w.mu.Unlock()
		}
	}
	return nil
}

// replay posts a captured genuine notification again, as a duplicate.
func (w *workload) replay(ctx context.Context, rnd *rand.Rand) error {
	w.mu.Lock()
	if len(w.captured) == 0 {
		w.mu.Unlock()
		return nil
	}
	form := w.captured[rnd.IntN(len(w.captured))]
	w.mu.Unlock()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.notify, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("replay answered %d", resp.StatusCode)
	}
	w.cnt.replays.Add(1)
	return nil
}

func (w *workload) pick(rnd *rand.Rand) (client.Payment, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.paid) == 0 {
		return client.Payment{}, false
	}
	return w.paid[rnd.IntN(len(w.paid))], true
}

// measure samples the sidecar process, its plugins and its store.
func measure(pid int, admin, db string) (sample, error) {
	var s sample
	var err error
	m, err := localproc.Scrape(admin+"/metrics", "go_goroutines", "go_memstats_heap_inuse_bytes")
	if err != nil {
		return s, err
	}
	s.goroutines, s.heapMiB = int(m["go_goroutines"]), m["go_memstats_heap_inuse_bytes"]/(1<<20)
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return s, err
	}
	s.openFiles = len(fds)
	s.rssMiB = localproc.RSSMiB(pid)
	for _, name := range []string{"wechat-jsapi", "wechat-miniapp", "alipay-native"} {
		if c := localproc.ChildNamed(pid, name); c > 0 {
			s.pluginsMiB += localproc.RSSMiB(c)
		}
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if fi, err := os.Stat(db + suffix); err == nil {
			s.storeKiB += fi.Size() >> 10
			if suffix == "-wal" {
				s.walKiB = fi.Size() >> 10
			}
		}
	}
	s.loadAverage1, _, _ = strings.Cut(localproc.LoadAverage(), " ")
	return s, nil
}

func report(out io.Writer, samples []sample) error {
	fmt.Fprintln(out, "| elapsed | goroutines | open files | RSS MiB | Go heap MiB | plugins RSS MiB | store KiB (WAL) | payments | refunds | queries | replays | webhooks | errors | load avg |")
	fmt.Fprintln(out, "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, s := range samples {
		fmt.Fprintf(out, "| %s | %d | %d | %.1f | %.1f | %.1f | %d (%d) | %d | %d | %d | %d | %d | %d | %s |\n", s.elapsed, s.goroutines, s.openFiles,
			s.rssMiB, s.heapMiB, s.pluginsMiB, s.storeKiB, s.walKiB, s.payments, s.refunds, s.queries, s.replays, s.webhooks, s.errors, s.loadAverage1)
	}
	if len(samples) < 4 {
		return nil
	}
	mid, last := samples[len(samples)/2], samples[len(samples)-1]
	fmt.Fprintf(out, "\nsecond half (%s to %s): goroutines %+d, open files %+d, RSS %+.1f MiB, Go heap %+.1f MiB, plugins RSS %+.1f MiB, store %+d KiB for %d more payments (%.2f KiB each)\n",
		mid.elapsed, last.elapsed, last.goroutines-mid.goroutines, last.openFiles-mid.openFiles, last.rssMiB-mid.rssMiB, last.heapMiB-mid.heapMiB,
		last.pluginsMiB-mid.pluginsMiB, last.storeKiB-mid.storeKiB, last.payments-mid.payments,
		float64(last.storeKiB-mid.storeKiB)/float64(max(1, last.payments-mid.payments)))
	return nil
}

func writeCSV(path string, samples []sample) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	_ = w.Write([]string{"elapsed_s", "goroutines", "open_files", "rss_mib", "go_heap_mib", "plugins_rss_mib", "store_kib", "wal_kib", "payments", "refunds", "queries", "replays", "webhooks", "errors", "load1"})
	for _, s := range samples {
		_ = w.Write([]string{
			strconv.Itoa(int(s.elapsed.Seconds())), strconv.Itoa(s.goroutines), strconv.Itoa(s.openFiles),
			strconv.FormatFloat(s.rssMiB, 'f', 1, 64), strconv.FormatFloat(s.heapMiB, 'f', 1, 64), strconv.FormatFloat(s.pluginsMiB, 'f', 1, 64),
			strconv.FormatInt(s.storeKiB, 10), strconv.FormatInt(s.walKiB, 10), strconv.FormatInt(s.payments, 10),
			strconv.FormatInt(s.refunds, 10), strconv.FormatInt(s.queries, 10), strconv.FormatInt(s.replays, 10),
			strconv.FormatInt(s.webhooks, 10), strconv.FormatInt(s.errors, 10), s.loadAverage1,
		})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
