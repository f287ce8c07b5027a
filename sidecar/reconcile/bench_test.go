package reconcile_test

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/paysidecar/paysidecar/sidecar/nkp"
	"github.com/paysidecar/paysidecar/sidecar/reconcile"
	"github.com/paysidecar/paysidecar/sidecar/statements"
	"github.com/paysidecar/paysidecar/sidecar/store/sqlite"
)

// benchDay is a generated day of trades: a trade bill and a settlement
// bill, and a SQLite ledger with the same payments and refunds.
type benchDay struct {
	dir    string
	db     string
	trade  statements.File
	settle statements.File
	trades int
}

var (
	benchOnce sync.Once
	bench     *benchDay
	benchErr  error
)

// benchTrades is the size of the generated day.
const benchTrades = 1_000_000

// fixedBills hands out the generated files.
type fixedBills struct{ d *benchDay }

func (f fixedBills) MerchantID() string { return "6666000100000001" }
func (f fixedBills) Ensure(_ context.Context, bill, _ string) ([]statements.File, error) {
	if bill == nkp.BillSettle {
		return []statements.File{f.d.settle}, nil
	}
	return []statements.File{f.d.trade}, nil
}
func (f fixedBills) Refetch(ctx context.Context, bill, date string) ([]statements.File, error) {
	return f.Ensure(ctx, bill, date)
}

// makeBenchDay writes n trades of one merchant on day0: every tenth a
// partial refund of the payment before it, the rest payments, with their
// ledger records in a SQLite store of the sidecar's schema.
func makeBenchDay(n int) (*benchDay, error) {
	dir, err := os.MkdirTemp("", "paysidecar-reconcile-bench-")
	if err != nil {
		return nil, err
	}
	d := &benchDay{dir: dir, db: filepath.Join(dir, "paysidecar.db"), trades: n}
	st, err := sqlite.Open(context.Background(), d.db, sqlite.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		return nil, err
	}
	_ = st.Close()
	db, err := sql.Open("sqlite", d.db+"?_journal_mode=WAL&_synchronous=OFF")
	if err != nil {
		return nil, err
	}
	defer func() { _ = db.Close() }()
	tx, err := db.Begin()
	if err != nil {
		return nil, err
	}
	insPay, err := tx.Prepare(`INSERT INTO payments (id, merchant_id, out_trade_no, flow, trade_type, amount_fen, req_date, req_seq_id, nkp_seq_id,
  status, trans_stat, refunded_fen, created_at, updated_at, finished_at, upstream_fields) VALUES (?, ?, ?, 'alipay-native', 'A_NATIVE', ?, ?, ?, ?, 'succeeded', 'S', ?, ?, ?, ?, ?)`)
	if err != nil {
		return nil, err
	}
	insRef, err := tx.Prepare(`INSERT INTO refunds (id, payment_id, merchant_id, out_refund_no, amount_fen, req_date, req_seq_id, nkp_seq_id,
  status, trans_stat, created_at, updated_at, finished_at, upstream_fields) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'succeeded', 'S', ?, ?, ?, ?)`)
	if err != nil {
		return nil, err
	}
	const merchant = "6666000100000001"
	d.trade = statements.File{Name: merchant + "_TRADE_BILL_" + day0 + ".csv", Path: filepath.Join(dir, "trade.csv")}
	f, err := os.Create(d.trade.Path)
	if err != nil {
		return nil, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	w.WriteString("\ufeff交易日期(trans_date),交易时间(trans_time),商户号(huifu_id),请求日期(req_date),请求流水号(req_seq_id),全局流水号(nkp_seq_id),交易类型(trans_type),交易状态(trans_stat),交易金额(trans_amt),手续费(fee_amt),结算金额(settle_amt),原请求日期(org_req_date),原请求流水号(org_req_seq_id),原全局流水号(org_nkp_seq_id),用户订单号(party_order_id),渠道交易号(out_trans_id)\r\n")
	start := time.Date(2025, 6, 15, 0, 0, 0, 0, nkp.Beijing)
	var pays, refunds int
	var payAmt, refundAmt, fees, settle nkp.Fen
	var lastPay string
	var lastAmt nkp.Fen
	for i := range n {
		// Serials as the sidecar makes them: time, then random; hashed
		// here so the file's time order is not the serial order.
		end := start.Add(time.Duration(i) * 86 * time.Millisecond)
		seq := end.Format("20060102150405") + strconv.FormatUint(uint64(i)*0x9E3779B97F4A7C15, 36)
		ts := end.Format(nkp.TimestampLayout)
		at := end.Add(2 * time.Second).UTC().UnixMicro()
		upstream := `{"resp_code":"00000000","trans_stat":"S","end_time":"` + ts + `","huifu_id":"` + merchant + `"}`
		if i%10 == 9 {
			amt := lastAmt / 2
			if _, err := insRef.Exec("ref_"+seq, "pay_"+lastPay, merchant, "r"+seq, int64(amt), day0, seq, "N"+seq, at, at, at, upstream); err != nil {
				return nil, err
			}
			fmt.Fprintf(w, "%s,%s,%s,%s,%s,N%s,TRANS_REFUND,S,%s,0.00,%s,%s,%s,N%s,,\r\n", day0, ts[8:], merchant, day0, seq, seq, amt.Yuan(), (-amt).Yuan(), day0, lastPay, lastPay)
			refunds++
			refundAmt += amt
			settle -= amt
			if _, err := tx.Exec(`UPDATE payments SET refunded_fen = ? WHERE id = ?`, int64(amt), "pay_"+lastPay); err != nil {
				return nil, err
			}
			continue
		}
		amt := nkp.Fen(100 + i%50000)
		fee := (amt*6 + 500) / 1000
		if _, err := insPay.Exec("pay_"+seq, merchant, "o"+seq, int64(amt), day0, seq, "N"+seq, 0, at, at, at, upstream); err != nil {
			return nil, err
		}
		fmt.Fprintf(w, "%s,%s,%s,%s,%s,N%s,A_NATIVE,S,%s,%s,%s,,,,03%s,2025%s\r\n", day0, ts[8:], merchant, day0, seq, seq, amt.Yuan(), fee.Yuan(), (amt - fee).Yuan(), seq, seq)
		pays++
		payAmt += amt
		fees += fee
		settle += amt - fee
		lastPay, lastAmt = seq, amt
	}
	fmt.Fprintf(w, "总笔数(total_count),支付笔数(pay_count),支付金额(pay_amt),退款笔数(refund_count),退款金额(refund_amt),手续费(fee_amt),结算金额(settle_amt)\r\n%d,%d,%s,%d,%s,%s,%s\r\n",
		n, pays, payAmt.Yuan(), refunds, refundAmt.Yuan(), fees.Yuan(), settle.Yuan())
	if err := w.Flush(); err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	d.settle = statements.File{Name: merchant + "_SETTLE_BILL_" + day0 + ".csv", Path: filepath.Join(dir, "settle.csv")}
	body := "结算日期(settle_date),商户号(huifu_id),支付笔数(pay_count),支付金额(pay_amt),退款笔数(refund_count),退款金额(refund_amt),手续费(fee_amt),结算金额(settle_amt)\r\n" +
		fmt.Sprintf("%s,%s,%d,%s,%d,%s,%s,%s\r\n", day0, merchant, pays, payAmt.Yuan(), refunds, refundAmt.Yuan(), fees.Yuan(), settle.Yuan())
	return d, os.WriteFile(d.settle.Path, []byte(body), 0o600)
}

// cpuTime is the CPU time the process used so far, user and system: a
// measure the other load of a shared machine does not inflate as it does
// wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// peakRSS reads the process's peak resident set size (VmHWM) in bytes.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// BenchmarkReconcileDay reconciles a generated day of 1,000,000 trades
// (900,000 payments, 100,000 refunds) against a SQLite ledger holding the
// same, and reports the peak heap in use and the peak resident set size
// during the run. The bound this package keeps is a peak HeapInuse of
// 64 MiB, whatever the size of the day: the statement is sorted on disk
// and the ledger is streamed.
func BenchmarkReconcileDay(b *testing.B) {
	benchOnce.Do(func() { bench, benchErr = makeBenchDay(benchTrades) })
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	st, err := sqlite.Open(context.Background(), bench.db, sqlite.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = st.Close() }()
	books := reconcile.StoreBooks{Store: st}
	rec, err := reconcile.New(reconcile.Config{TempDir: bench.dir}, reconcile.Deps{Bills: fixedBills{bench}, Ledger: books, Runs: books,
		Now: func() time.Time { return t0.Add(24 * time.Hour) }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	// Reset the peak RSS, so that the setup's does not count.
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	var peakHeap uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			peakHeap = max(peakHeap, ms.HeapInuse)
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	cpu0 := cpuTime()
	b.ResetTimer()
	for b.Loop() {
		rep, err := rec.Run(context.Background(), day0, reconcile.RunOptions{Trigger: reconcile.TriggerAPI})
		if err != nil {
			b.Fatal(err)
		}
		if rep.Status != reconcile.StatusClean || rep.FileRecords != bench.trades || rep.LedgerRecords != bench.trades {
			b.Fatalf("report: %s, %d statement and %d ledger records, %d differences: %+v", rep.Status, rep.FileRecords, rep.LedgerRecords, rep.Total(), rep.Differences[:min(5, len(rep.Differences))])
		}
	}
	b.StopTimer()
	b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N), "cpu-s/op")
	close(stop)
	<-sampled
	b.ReportMetric(float64(peakHeap)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(peakRSS())/(1<<20), "peak-RSS-MiB")
	b.ReportMetric(float64(bench.trades), "trades/op")
	if peakHeap > 64<<20 {
		b.Errorf("peak HeapInuse %d MiB exceeds the 64 MiB bound", peakHeap>>20)
	}
}
