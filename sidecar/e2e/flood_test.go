package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paysidecar/paysidecar/sandbox"
	"github.com/paysidecar/paysidecar/sandbox/sandboxtest"
	"github.com/paysidecar/paysidecar/sdk/client"
)

// The notify port flood benchmark: what a flood of the one public port
// costs the app API. One run starts the real sidecar with its plugins
// against the sandbox and, for each repetition, measures the app API's
// latency (GET /v1/payments/{id} of an existing payment, and creates)
// unloaded, then during a flood of garbage, then during a flood of one
// genuine notification captured from the sandbox and replayed, side by
// side. Every payment created during a flood is paid in the sandbox, whose
// genuine notification (with the upstream's retry rules) must be
// acknowledged: the benchmark fails otherwise.
//
// Settings, from the environment:
//
//	FLOOD_RATE     requests per second the flood aims at (4700)
//	FLOOD_SOURCES  source addresses it comes from, 127.0.0.2 on (1)
//	FLOOD_WORKERS  concurrent connections (16)
//	FLOOD_PHASE    length of each phase (5s)
//	FLOOD_REPEAT   repetitions of the three phases (3)
//
// and PAYSIDECAR_NOTIFY__* settings are passed on to the sidecar.

type floodSettings struct {
	rate    float64
	sources int
	workers int
	phase   time.Duration
	repeat  int
}

func floodSettingsFromEnv(b *testing.B) floodSettings {
	s := floodSettings{rate: 4700, sources: 1, workers: 16, phase: 5 * time.Second, repeat: 3}
	num := func(name string, dst *int) {
		if v := os.Getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				b.Fatalf("%s=%q: want a positive integer", name, v)
			}
			*dst = n
		}
	}
	num("FLOOD_SOURCES", &s.sources)
	num("FLOOD_WORKERS", &s.workers)
	num("FLOOD_REPEAT", &s.repeat)
	if v := os.Getenv("FLOOD_RATE"); v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || r <= 0 {
			b.Fatalf("FLOOD_RATE=%q: want a positive number", v)
		}
		s.rate = r
	}
	if v := os.Getenv("FLOOD_PHASE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			b.Fatalf("FLOOD_PHASE=%q: want a duration", v)
		}
		s.phase = d
	}
	return s
}

// floodRig is the sidecar and sandbox a flood run uses.
type floodRig struct {
	b        *testing.B
	sb       *sandboxtest.Instance
	sc       *sidecar
	existing string
	replay   url.Values
}

// phaseResult is what one phase measured.
type phaseResult struct {
	get, create []time.Duration
	sent        int64
	elapsed     time.Duration
	statuses    map[int]int64
	logBytes    int
	spans       int
	genuine     int
	retried     int
	sidecarCPU  float64 // seconds of CPU the sidecar used
	benchCPU    float64 // seconds of CPU this process (flood, sandbox, API client) used
}

// cpuSeconds is the user and system CPU time pid has used.
func cpuSeconds(pid string) float64 {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	// utime and stime are fields 14 and 15 of stat, in clock ticks (100 a
	// second on Linux).
	u, _ := strconv.ParseFloat(f[11], 64)
	k, _ := strconv.ParseFloat(f[12], 64)
	return (u + k) / 100
}

func BenchmarkNotifyFlood(b *testing.B) {
	if testing.Short() {
		b.Skip("the flood benchmark takes minutes")
	}
	set := floodSettingsFromEnv(b)
	for b.Loop() {
		rig := newFloodRig(b)
		kinds := []string{"unloaded", "garbage", "replay"}
		results := map[string][]phaseResult{}
		for range set.repeat {
			for _, k := range kinds {
				results[k] = append(results[k], rig.phase(k, set))
			}
		}
		reportFlood(b, set, results)
	}
}

func newFloodRig(b *testing.B) *floodRig {
	b.Helper()
	// The upstream's own retry rhythm, not the tests' fast one.
	sb := sandboxtest.Start(b, sandboxtest.WithConfig(func(c *sandbox.Config) { c.NotifyBackoff = sandbox.DefaultNotifyBackoff }))
	extra := []string{"PAYSIDECAR_REQUERY__SCHEDULE=15s,30s,1m,2m,5m,10m", "PAYSIDECAR_REQUERY__INTERVAL=1s",
		"PAYSIDECAR_TRACING__EXPORTER=stdout", "OTEL_BSP_SCHEDULE_DELAY=100"}
	// Other notify limits can be tried from the benchmark's environment.
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PAYSIDECAR_NOTIFY__") {
			extra = append(extra, kv)
		}
	}
	e, api, notify, admin := sidecarEnv(b, sb.URL, b.TempDir(), extra...)
	rig := &floodRig{b: b, sb: sb, sc: startSidecar(b, e, api, notify, admin)}
	ctx := context.Background()
	p, err := rig.sc.Client.CreatePayment(ctx, benchOrder())
	if err != nil {
		b.Fatal(err)
	}
	rig.existing = p.ID
	// Capture the genuine notification the sandbox sends when it is paid.
	sb.SettlePayment(b, p.ReqDate, p.ReqSeqID, sandbox.ResultPaid)
	recs := sb.WaitNotifications(b, sandbox.Filter{ReqSeqID: p.ReqSeqID}, 30*time.Second, sandboxtest.Finished)
	n := recs[0]
	rig.replay = url.Values{"resp_code": {n.RespCode}, "resp_desc": {n.RespDesc}, "resp_data": {n.RespData}, "sign": {n.Sign}}
	return rig
}

// phase measures the app API for set.phase under the named load.
func (r *floodRig) phase(kind string, set floodSettings) phaseResult {
	b := r.b
	res := phaseResult{statuses: map[int]int64{}}
	logsBefore, spansBefore := len(r.sc.logs.String()), strings.Count(r.sc.stdout.String(), `{"Name":`)
	scPID := strconv.Itoa(r.sc.cmd.Process.Pid)
	scCPU, benchCPU := cpuSeconds(scPID), cpuSeconds("self")
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	var sent atomic.Int64
	started := time.Now()
	if kind != "unloaded" {
		for w := range set.workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				local := fmt.Sprintf("127.0.0.%d", 2+w%set.sources)
				got := floodWorker(ctx, r.sc.Notify, local, kind, r.replay, set.rate/float64(set.workers), &sent)
				mu.Lock()
				for k, v := range got {
					res.statuses[k] += v
				}
				mu.Unlock()
			}()
		}
	}
	var paid []client.Payment
	deadline := time.Now().Add(set.phase)
	for i := 0; time.Now().Before(deadline); i++ {
		if i%5 == 4 {
			t0 := time.Now()
			p, err := r.sc.Client.CreatePayment(context.Background(), benchOrder())
			res.create = append(res.create, time.Since(t0))
			if err != nil {
				b.Fatalf("%s: create: %v", kind, err)
			}
			r.sb.SettlePayment(b, p.ReqDate, p.ReqSeqID, sandbox.ResultPaid)
			paid = append(paid, p)
			continue
		}
		t0 := time.Now()
		if _, err := r.sc.Client.GetPayment(context.Background(), r.existing); err != nil {
			b.Fatalf("%s: get: %v", kind, err)
		}
		res.get = append(res.get, time.Since(t0))
	}
	stop()
	wg.Wait()
	res.elapsed = time.Since(started)
	res.sidecarCPU, res.benchCPU = cpuSeconds(scPID)-scCPU, cpuSeconds("self")-benchCPU
	res.sent = sent.Load()
	res.logBytes = len(r.sc.logs.String()) - logsBefore

	// Every genuine notification sent during the phase is acknowledged.
	for _, p := range paid {
		recs := r.sb.WaitNotifications(b, sandbox.Filter{ReqSeqID: p.ReqSeqID}, 60*time.Second, sandboxtest.Finished)
		for _, rec := range recs {
			if rec.State != sandbox.DeliveryDelivered {
				b.Fatalf("%s: the genuine notification of %s ended %s after %d attempts", kind, p.ID, rec.State, len(rec.Attempts))
			}
			res.genuine++
			if len(rec.Attempts) > 1 {
				res.retried++
			}
		}
	}
	// Spans are exported in batches every 100 ms; wait for the phase's.
	waitFor(b, 10*time.Second, "spans exported", func() (bool, string) {
		n := strings.Count(r.sc.stdout.String(), `{"Name":`)
		time.Sleep(300 * time.Millisecond)
		return strings.Count(r.sc.stdout.String(), `{"Name":`) == n, ""
	})
	res.spans = strings.Count(r.sc.stdout.String(), `{"Name":`) - spansBefore
	return res
}

// floodWorker sends kind of flood to target from the address local at
// about rate requests per second until ctx ends, and counts the answers
// by status (0 for a failed request).
func floodWorker(ctx context.Context, target, local, kind string, replay url.Values, rate float64, sent *atomic.Int64) map[int]int64 {
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: dialer.DialContext, MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1,
	}}
	defer hc.CloseIdleConnections()
	statuses := map[int]int64{}
	interval := time.Duration(float64(time.Second) / rate)
	next := time.Now()
	body := replay.Encode()
	for i := 0; ; i++ {
		if d := time.Until(next); d > 0 {
			select {
			case <-ctx.Done():
				return statuses
			case <-time.After(d):
			}
		} else if ctx.Err() != nil {
			return statuses
		}
		next = next.Add(interval)
		method, ctype := http.MethodPost, "application/x-www-form-urlencoded"
		if kind == "garbage" {
			method, ctype, body = garbage(i)
		}
		req, _ := http.NewRequestWithContext(ctx, method, target, strings.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		resp, err := hc.Do(req)
		sent.Add(1)
		if err != nil {
			if ctx.Err() != nil {
				return statuses
			}
			statuses[0]++
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		statuses[resp.StatusCode]++
	}
}

// garbage returns the i-th request of a garbage flood: forms with a
// random signature over made-up data (which reach the signature check),
// random bytes, other content types and methods.
func garbage(i int) (method, contentType, body string) {
	junk := make([]byte, 256)
	_, _ = rand.Read(junk)
	switch i % 4 {
	case 0:
		sig := make([]byte, 256)
		_, _ = rand.Read(sig)
		return http.MethodPost, "application/x-www-form-urlencoded", url.Values{
			"resp_code": {"00000000"}, "resp_desc": {"success"},
			"resp_data": {fmt.Sprintf(`{"req_seq_id":"%x","trans_stat":"S","trans_amt":"0.01"}`, junk[:8])},
			"sign":      {base64.StdEncoding.EncodeToString(sig)},
		}.Encode()
	case 1:
		return http.MethodPost, "application/x-www-form-urlencoded", url.QueryEscape(string(junk))
	case 2:
		return http.MethodPost, "application/json", base64.StdEncoding.EncodeToString(junk)
	default:
		return http.MethodGet, "", ""
	}
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

// spread is the median, min and max of xs.
func spread(xs []float64) (med, lo, hi float64) {
	s := slices.Clone(xs)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		med = s[n/2]
	} else {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return med, s[0], s[n-1]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func reportFlood(b *testing.B, set floodSettings, results map[string][]phaseResult) {
	var out bytes.Buffer
	w := bufio.NewWriter(&out)
	fmt.Fprintf(w, "\nflood: %.0f req/s aimed, %d source address(es), %d connections, %s phases, %d repetitions\n\n",
		set.rate, set.sources, set.workers, set.phase, set.repeat)
	fmt.Fprintf(w, "| phase | flood req/s | GET p50 ms | GET p99 ms | create p50 ms | create p99 ms | sidecar CPU | bench CPU | log bytes | spans | genuine acked (retried) | answers |\n")
	fmt.Fprintf(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
	for _, k := range []string{"unloaded", "garbage", "replay"} {
		for i, r := range results[k] {
			var codes []string
			for c, n := range r.statuses {
				codes = append(codes, fmt.Sprintf("%d×%d", n, c))
			}
			sort.Strings(codes)
			fmt.Fprintf(w, "| %s #%d | %.0f | %.2f | %.2f | %.2f | %.2f | %.0f%% | %.0f%% | %d | %d | %d (%d) | %s |\n", k, i+1,
				float64(r.sent)/r.elapsed.Seconds(), ms(percentile(r.get, 50)), ms(percentile(r.get, 99)),
				ms(percentile(r.create, 50)), ms(percentile(r.create, 99)), 100*r.sidecarCPU/r.elapsed.Seconds(),
				100*r.benchCPU/r.elapsed.Seconds(), r.logBytes, r.spans, r.genuine, r.retried, strings.Join(codes, " "))
		}
	}
	fmt.Fprintf(w, "\nratios to the unloaded phase of the same repetition: median (min–max)\n\n")
	fmt.Fprintf(w, "| flood | GET p50 | GET p99 | create p50 | create p99 |\n| --- | ---: | ---: | ---: | ---: |\n")
	for _, k := range []string{"garbage", "replay"} {
		cols := []string{}
		for _, m := range []struct {
			name string
			of   func(phaseResult) time.Duration
		}{
			{"get-p50", func(r phaseResult) time.Duration { return percentile(r.get, 50) }},
			{"get-p99", func(r phaseResult) time.Duration { return percentile(r.get, 99) }},
			{"create-p50", func(r phaseResult) time.Duration { return percentile(r.create, 50) }},
			{"create-p99", func(r phaseResult) time.Duration { return percentile(r.create, 99) }},
		} {
			var ratios []float64
			for i, r := range results[k] {
				ratios = append(ratios, ms(m.of(r))/ms(m.of(results["unloaded"][i])))
			}
			med, lo, hi := spread(ratios)
			cols = append(cols, fmt.Sprintf("%.2f× (%.2f–%.2f)", med, lo, hi))
			b.ReportMetric(med, m.name+"-ratio-"+k)
		}
		fmt.Fprintf(w, "| %s | %s |\n", k, strings.Join(cols, " | "))
	}
	_ = w.Flush()
	// Printed whole: a benchmark's log is cut short.
	fmt.Print(out.String())
}
