package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/paysidecar/paysidecar/internal/localproc"
	"github.com/paysidecar/paysidecar/sdk/client"
	"github.com/paysidecar/paysidecar/sdk/upstream"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
)

// ingestSenders is how many senders post notifications at once.
const ingestSenders = 64

// rawStore is the baseline of the ingest figure: the store the sidecar
// runs on, committing one-row transactions one after another.
type rawStore interface {
	// commitRate commits single-row transactions for d and returns how
	// many it committed per second.
	commitRate(ctx context.Context, d time.Duration) (float64, error)
}

// ingestRun is one repeat of the ingest figure.
type ingestRun struct {
	perSecond, raw float64
}

// signNotice returns the upstream's signed success notification of pay.
func signNotice(sb *sandboxProc, pay client.Payment) (url.Values, error) {
	n, err := nkp.SignNotification(sb.keys.Upstream.Private, nkp.CodeAccepted, "ok", map[string]any{
		"resp_code": nkp.CodeAccepted, "resp_desc": "ok", "huifu_id": pay.MerchantID, "req_seq_id": pay.ReqSeqID,
		"req_date": pay.ReqDate, "nkp_seq_id": pay.NkpSeqID, "trans_type": upstream.TradeAlipayNative, "trans_amt": "0.01",
		"trans_stat": nkp.StatSuccess, "end_time": nkp.Timestamp(time.Now()), "notify_type": nkp.NotifyTypeChannel,
	})
	if err != nil {
		return nil, fmt.Errorf("sign notification: %w", err)
	}
	return n.Form(), nil
}

// notices takes n payments from the sidecar's pool and signs their
// notifications (outside any timing).
func notices(ctx context.Context, sb *sandboxProc, sc *sidecarProc, n int) ([]client.Payment, []url.Values, error) {
	pays, err := sc.pool.take(ctx, n)
	if err != nil {
		return nil, nil, err
	}
	forms := make([]url.Values, len(pays))
	for i, pay := range pays {
		if forms[i], err = signNotice(sb, pay); err != nil {
			return nil, nil, err
		}
	}
	return pays, forms, nil
}

// postNotice posts one notification form to the sidecar's ingress and
// requires its acknowledgement.
func postNotice(ctx context.Context, hc *http.Client, target string, form url.Values) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(string(body), "RECV_ORD_ID_") {
		return fmt.Errorf("notify answered %d %q", resp.StatusCode, body)
	}
	return nil
}

// measureIngest posts n notifications from 64 concurrent senders, then
// measures the raw commit rate for rawFor, repeats times. Between repeats it
// waits until every webhook was delivered, so that delivery does not
// spill into the next repeat.
//
// When prof is not nil, one more posting follows the repeats, long enough
// for the profile to cover nothing but posting and the delivery that
// goes along with it: as many notifications as the repeats' median rate
// posts in three seconds, profiled for the first two, as profile.pprof.
func measureIngest(ctx context.Context, repeats, n int, rawFor time.Duration, sb *sandboxProc, sc *sidecarProc, raw rawStore,
	prof *profiler, profile string, out *[]ingestRun) error {
	hc := keepAlive()
	for rep := range repeats {
		pays, forms, err := notices(ctx, sb, sc, n)
		if err != nil {
			return err
		}
		startCPU := localproc.CPUTime(sc.proc.PID())
		elapsed, err := postAll(ctx, hc, sc, forms)
		if err != nil {
			return err
		}
		if err := waitDelivered(ctx, sc, pays); err != nil {
			return err
		}
		log.Printf("  host CPU from the first post to the last webhook: %.0f µs per notification",
			float64((localproc.CPUTime(sc.proc.PID())-startCPU).Microseconds())/float64(len(forms)))
		rate, err := raw.commitRate(ctx, rawFor)
		if err != nil {
			return fmt.Errorf("raw commits: %w", err)
		}
		run := ingestRun{perSecond: float64(len(forms)) / elapsed.Seconds(), raw: rate}
		*out = append(*out, run)
		log.Printf("  repeat %d: %.0f notifications/s, raw %.0f commits/s", rep+1, run.perSecond, run.raw)
	}
	if prof == nil || len(*out) == 0 {
		return nil
	}
	rate := summarize(each(*out, func(r ingestRun) float64 { return r.perSecond })).median
	pays, forms, err := notices(ctx, sb, sc, int(3*rate))
	if err != nil {
		return err
	}
	log.Printf("  profiled posting of %d notifications", len(forms))
	wait := prof.start(ctx, sc, profile, 2*time.Second)
	_, err = postAll(ctx, hc, sc, forms)
	wait()
	if err != nil {
		return err
	}
	return waitDelivered(ctx, sc, pays)
}

// postAll posts forms from ingestSenders concurrent senders and returns
// how long the posting took. It logs the store committer's figures and
// the host's CPU time and context switches over the posting.
func postAll(ctx context.Context, hc *http.Client, sc *sidecarProc, forms []url.Values) (time.Duration, error) {
	var next atomic.Int64
	var first atomic.Value
	before := scrapeCommitter(sc)
	hostCPU := localproc.CPUTime(sc.proc.PID())
	hostSwitches := localproc.ContextSwitches(sc.proc.PID())
	began := time.Now()
	var wg sync.WaitGroup
	for range ingestSenders {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(len(forms)); i = next.Add(1) - 1 {
				if err := postNotice(ctx, hc, sc.notify, forms[i]); err != nil {
					first.CompareAndSwap(nil, err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(began)
	hostCPU = localproc.CPUTime(sc.proc.PID()) - hostCPU
	hostSwitches = localproc.ContextSwitches(sc.proc.PID()) - hostSwitches
	if after := scrapeCommitter(sc); after != nil && before != nil {
		log.Printf("  %s", after.since(before))
	}
	log.Printf("  host CPU while posting: %.0f µs per notification, %.0f %% of one CPU, %.1f context switches per notification",
		float64(hostCPU.Microseconds())/float64(len(forms)), 100*hostCPU.Seconds()/elapsed.Seconds(),
		float64(hostSwitches)/float64(len(forms)))
	if err, ok := first.Load().(error); ok {
		return elapsed, err
	}
	return elapsed, nil
}

// waitDelivered waits until the webhook receiver has taken the
// payment.succeeded of each of pays.
func waitDelivered(ctx context.Context, sc *sidecarProc, pays []client.Payment) error {
	ids := make([]string, len(pays))
	for i, pay := range pays {
		ids[i] = pay.ID
	}
	return sc.hook.waitAll(ctx, ids, 5*time.Minute)
}

// committerStats are the sums of the store committer's histograms
// (paysidecar_store_commit_writes, …_commit_duration_seconds,
// …_write_queue_seconds) at one scrape.
type committerStats struct {
	commits, writes, commitSecs, queued, queueSecs float64
}

// scrapeCommitter reads the committer's sums from the sidecar's metrics,
// whichever store engine it runs; nil when the sidecar has none (an older
// build) or the scrape fails.
func scrapeCommitter(sc *sidecarProc) *committerStats {
	for _, engine := range []string{"sqlite", "postgres"} {
		name := func(metric string) string { return metric + `{engine="` + engine + `"}` }
		m, err := localproc.Scrape(sc.admin+"/metrics",
			name("paysidecar_store_commit_writes_count"), name("paysidecar_store_commit_writes_sum"),
			name("paysidecar_store_commit_duration_seconds_sum"),
			name("paysidecar_store_write_queue_seconds_count"), name("paysidecar_store_write_queue_seconds_sum"))
		if err != nil {
			continue
		}
		return &committerStats{
			commits: m[name("paysidecar_store_commit_writes_count")], writes: m[name("paysidecar_store_commit_writes_sum")],
			commitSecs: m[name("paysidecar_store_commit_duration_seconds_sum")],
			queued:     m[name("paysidecar_store_write_queue_seconds_count")], queueSecs: m[name("paysidecar_store_write_queue_seconds_sum")],
		}
	}
	return nil
}

// since describes the commits between two scrapes.
func (a *committerStats) since(b *committerStats) string {
	commits, writes := a.commits-b.commits, a.writes-b.writes
	queued := a.queued - b.queued
	if commits <= 0 || queued <= 0 {
		return "committer: no commits"
	}
	return fmt.Sprintf("committer: %.0f commits of %.1f writes on average, %.2f ms each; a write queued %.2f ms on average",
		commits, writes/commits, 1000*(a.commitSecs-b.commitSecs)/commits, 1000*(a.queueSecs-b.queueSecs)/queued)
}

// deliverRate is the rate of notifications of the delivery figure.
const deliverRate = 20

// measureDelivery posts notifications at 20/s and times each from its post
// to the application's 2xx for its webhook.
func measureDelivery(ctx context.Context, p plan, sb *sandboxProc, sc *sidecarProc, r *results) error {
	hc := keepAlive()
	for rep := range p.repeats {
		n := max(int(deliverRate*p.deliverFor.Seconds()), 1)
		pays, forms, err := notices(ctx, sb, sc, n)
		if err != nil {
			return err
		}
		sent := make([]time.Time, n)
		_, err = openLoop(ctx, deliverRate, p.deliverFor, func(ctx context.Context, i int64) error {
			sent[i] = time.Now()
			return postNotice(ctx, hc, sc.notify, forms[i])
		})
		if err != nil {
			return err
		}
		ids := make([]string, n)
		for i, pay := range pays {
			ids[i] = pay.ID
		}
		if err := sc.hook.waitAll(ctx, ids, time.Minute); err != nil {
			return err
		}
		lat := make([]time.Duration, n)
		for i, id := range ids {
			at, _ := sc.hook.arrived(id)
			lat[i] = at.Sub(sent[i])
		}
		r.deliver = append(r.deliver, lat)
		log.Printf("  repeat %d: p50 %s p99 %s", rep+1, percentile(lat, 50), percentile(lat, 99))
	}
	return nil
}
