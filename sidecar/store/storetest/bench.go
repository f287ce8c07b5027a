package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/paysidecar/paysidecar/sidecar/store"
)

// benchPayload is the size of a typical webhook body.
var benchPayload = json.RawMessage(`{"id":"evt","type":"payment.succeeded","data":{"object":{"id":"pay_0123456789",` +
	`"out_trade_no":"order-0123456789","amount_fen":12345,"status":"succeeded"},` +
	`"upstream":{"trans_stat":"S","nkp_seq_id":"002900TOP1A250301100000P123ac1"}}}`)

// BenchInsertEvent measures InsertEvent on s, one new event per iteration
// spread over 100 order keys, from one caller: each write is a commit of
// its own. Besides the time it reports the process's CPU time and context
// switches per write (cpu-µs/op, switches/op), which the commit's wait for
// the disk does not blur.
func BenchInsertEvent(b *testing.B, s store.Store) {
	ctx := context.Background()
	now := time.Now()
	b.ReportAllocs()
	report := perOp(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e := &store.Event{ID: fmt.Sprintf("evt_bench_%d", i), Type: "payment.succeeded",
			OrderKey: fmt.Sprintf("pay_%d", i%100), Payload: benchPayload, CreatedAt: now}
		if _, err := s.InsertEvent(ctx, e); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	report()
}

// BenchGetPayment measures GetPayment on s, one payment read again and
// again: with a context that can be canceled, as a request's, and as the
// baseline with context.Background, which no driver watches. Both report
// CPU time and context switches per read.
func BenchGetPayment(b *testing.B, s store.Store) {
	benchPayments(b, s, 1)
	for _, c := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
	}{
		{"request-context", func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) }},
		{"background-context", func() (context.Context, context.CancelFunc) { return context.Background(), func() {} }},
	} {
		b.Run(c.name, func(b *testing.B) {
			ctx, cancel := c.ctx()
			defer cancel()
			b.ReportAllocs()
			report := perOp(b)
			for b.Loop() {
				if _, err := s.GetPayment(ctx, "pay_bench_0"); err != nil {
					b.Fatal(err)
				}
			}
			report()
		})
	}
}

// BenchClaimEvents measures the delivery loop on s: b.N events (over 1000
// order keys) are inserted first, then claimed in batches of 10 and each
// completed as delivered. The time is per event.
func BenchClaimEvents(b *testing.B, s store.Store) {
	ctx := context.Background()
	now := time.Now()
	for i := 0; i < b.N; i++ {
		e := &store.Event{ID: fmt.Sprintf("evt_bench_%d", i), Type: "payment.succeeded",
			OrderKey: fmt.Sprintf("pay_%d", i%1000), Payload: benchPayload, CreatedAt: now}
		if _, err := s.InsertEvent(ctx, e); err != nil {
			b.Fatal(err)
		}
	}
	claim := store.Claim{Owner: "bench", LeaseUntil: now.Add(time.Hour)}
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		evs, err := s.ClaimEvents(ctx, claim, now, 10)
		if err != nil {
			b.Fatal(err)
		}
		if len(evs) == 0 {
			b.Fatalf("nothing to claim after %d of %d events", done, b.N)
		}
		for _, e := range evs {
			if err := s.CompleteAttempt(ctx, store.Attempt{EventID: e.ID, Owner: "bench", Delivered: true, At: now}); err != nil {
				b.Fatal(err)
			}
		}
		done += len(evs)
	}
}

// Concurrency is the number of goroutines of the parallel benchmarks: the
// senders of a busy upstream.
const Concurrency = 64

// RunParallel runs op b.N times from Concurrency goroutines, each call
// with a number unique in the run, and reports the rate of calls per
// second as unit, and the CPU time of this process (user and system) and
// its context switches per call as cpu-µs/op and switches/op: on a busy
// machine the rate says what the machine gave, the CPU time what a call
// costs. The engines' own baselines use it too.
func RunParallel(b *testing.B, unit string, op func(i int64) error) {
	procs := runtime.GOMAXPROCS(0)
	b.SetParallelism((Concurrency + procs - 1) / procs)
	var next atomic.Int64
	b.ReportAllocs()
	report := perOp(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := op(next.Add(1) - 1); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), unit)
	report()
}

// perOp starts counting this process's CPU time (user and system) and
// context switches; the function it returns reports both per operation
// of b, as cpu-µs/op and switches/op.
func perOp(b *testing.B) func() {
	cpu, switches := processUsage()
	return func() {
		cpuNow, switchesNow := processUsage()
		b.ReportMetric(float64((cpuNow-cpu).Microseconds())/float64(b.N), "cpu-µs/op")
		b.ReportMetric(float64(switchesNow-switches)/float64(b.N), "switches/op")
	}
}

// processUsage returns the CPU time and the context switches (voluntary
// and involuntary) of this process's threads so far.
func processUsage() (time.Duration, int64) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), ru.Nvcsw + ru.Nivcsw
}

// benchNotification is a notification of a payment as the upstream sends
// it, about 500 bytes of resp_data.
func benchNotification(i int64) store.Notification {
	seq := fmt.Sprintf("bench%010d", i)
	resp := `{"resp_code":"00000000","resp_desc":"success","huifu_id":"6666000100000001","req_seq_id":"` + seq +
		`","req_date":"20250301","nkp_seq_id":"002900TOP1A250301100000P` + seq + `","trans_type":"T_JSAPI",` +
		`"trans_amt":"123.45","trans_stat":"S","out_trans_id":"4200001234202503011234567890","party_order_id":"0301` + seq +
		`","end_time":"20250301100102","notify_type":"1","wx_response":"{\"openid\":\"o-1234567890abcdef\",` +
		`\"bank_type\":\"OTHERS\",\"sub_appid\":\"wx1234567890abcdef\",\"sub_openid\":\"o-abcdef1234567890\"}"}`
	return store.Notification{ID: fmt.Sprintf("%064d", i), ReqSeqID: seq, Kind: "payment",
		ObjectID: fmt.Sprintf("pay_bench_%d", i), RespData: resp}
}

// benchPayments creates n pending payments, pay_bench_0 to pay_bench_<n-1>,
// outside the benchmark's time.
func benchPayments(b *testing.B, s store.Store, n int) {
	b.Helper()
	ctx := context.Background()
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(Concurrency)
	for i := range n {
		g.Go(func() error {
			id := fmt.Sprintf("pay_bench_%d", i)
			return s.CreatePayment(ctx, &store.Payment{ID: id, MerchantID: "6666000100000001", OutTradeNo: "order-" + id,
				AmountFen: 12345, ReqDate: "20250301", ReqSeqID: fmt.Sprintf("bench%010d", i)})
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
}

// benchTransition is the transition a successful payment notification
// asks for, with its event.
func benchTransition(i int64) store.Transition {
	id := fmt.Sprintf("evt_bench_%d", i)
	return store.Transition{To: store.StatusSucceeded, TransStat: "S", NkpSeqID: fmt.Sprintf("002900TOP1A%010d", i),
		Event: &store.Event{ID: id, Type: "payment.succeeded", Payload: benchPayload}}
}

// BenchInsertEventParallel measures single-row commits through the store:
// each call inserts one new event, from Concurrency goroutines at once.
func BenchInsertEventParallel(b *testing.B, s store.Store) {
	ctx := context.Background()
	RunParallel(b, "commits/s", func(i int64) error {
		e := &store.Event{ID: fmt.Sprintf("evt_bench_%d", i), Type: "payment.succeeded",
			OrderKey: fmt.Sprintf("pay_%d", i), Payload: benchPayload}
		_, err := s.InsertEvent(ctx, e)
		return err
	})
}

// BenchRecordNotification measures notification ingest as deduplication
// and storage: each call records one new notification, from Concurrency
// goroutines at once.
func BenchRecordNotification(b *testing.B, s store.Store) {
	ctx := context.Background()
	RunParallel(b, "notifications/s", func(i int64) error {
		_, err := s.RecordNotification(ctx, benchNotification(i))
		return err
	})
}

// benchNotifications creates b.N payments, then times write, called with
// each payment's notification and the transition it asks for, from
// Concurrency goroutines at once; write reports whether the payment moved.
func benchNotifications(b *testing.B, s store.Store, write func(n store.Notification, t store.Transition) (bool, error)) {
	benchPayments(b, s, b.N)
	RunParallel(b, "notifications/s", func(i int64) error {
		n := benchNotification(i)
		applied, err := write(n, benchTransition(i))
		if err == nil && !applied {
			err = fmt.Errorf("payment %s did not move", n.ObjectID)
		}
		return err
	})
}

// BenchNotificationTwoWrites measures a notification written as two
// commits, RecordNotification then TransitionPayment with its event: the
// path before ApplyNotification.
func BenchNotificationTwoWrites(b *testing.B, s store.Store) {
	ctx := context.Background()
	benchNotifications(b, s, func(n store.Notification, t store.Transition) (bool, error) {
		if _, err := s.RecordNotification(ctx, n); err != nil {
			return false, err
		}
		_, applied, err := s.TransitionPayment(ctx, n.ObjectID, t)
		return applied, err
	})
}

// BenchApplyNotification measures the write of a notification that
// finishes a payment: ApplyNotification records it and moves the payment
// with its event in one call.
func BenchApplyNotification(b *testing.B, s store.Store) {
	ctx := context.Background()
	benchNotifications(b, s, func(n store.Notification, t store.Transition) (bool, error) {
		res, err := s.ApplyNotification(ctx, n, t)
		return res.Applied, err
	})
}

// Benchmarks runs every benchmark of this package as a sub-benchmark, each
// run on a new store from open.
func Benchmarks(b *testing.B, open func(b *testing.B) store.Store) {
	for _, bm := range []struct {
		name string
		run  func(*testing.B, store.Store)
	}{
		{"InsertEvent", BenchInsertEvent},
		{"GetPayment", BenchGetPayment},
		{"ClaimEvents", BenchClaimEvents},
		{"InsertEventParallel", BenchInsertEventParallel},
		{"RecordNotification", BenchRecordNotification},
		{"NotificationTwoWrites", BenchNotificationTwoWrites},
		{"ApplyNotification", BenchApplyNotification},
	} {
		b.Run(bm.name, func(b *testing.B) { bm.run(b, open(b)) })
	}
}
