package statements_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/paysidecar/paysidecar/sandbox"
	"github.com/paysidecar/paysidecar/sandbox/sandboxtest"
	"github.com/paysidecar/paysidecar/sdk/upstream"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
	"github.com/paysidecar/paysidecar/sidecar/statements"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// t0 is 2025-06-15 10:00 Beijing time.
var t0 = time.Date(2025, 6, 15, 10, 0, 0, 0, nkp.Beijing)

const day0 = "20250615"

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

// proxy sits between the archive and the sandbox's downloads, so a test
// can see and disturb them.
type proxy struct {
	srv  *httptest.Server
	inst *sandboxtest.Instance

	mu       sync.Mutex
	requests []*http.Request
	// disturb, when set, answers a download instead of the sandbox; it
	// gets the 1-based number of the download request.
	disturb func(n int, w http.ResponseWriter, r *http.Request, next http.Handler) bool
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	next := p.inst.Server.Handler()
	if strings.HasPrefix(r.URL.Path, "/bills/") {
		p.mu.Lock()
		p.requests = append(p.requests, r.Clone(context.Background()))
		n, d := len(p.requests), p.disturb
		p.mu.Unlock()
		if d != nil && d(n, w, r, next) {
			return
		}
	}
	next.ServeHTTP(w, r)
}

func (p *proxy) downloads() []*http.Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*http.Request(nil), p.requests...)
}

// startDay runs a sandbox whose download links go through a proxy and
// trades a day on it: two payments paid, one failed, one partial refund.
func startDay(t *testing.T, opts ...sandboxtest.Option) (*sandboxtest.Instance, *proxy, *sandboxtest.Clock) {
	t.Helper()
	p := &proxy{}
	p.srv = httptest.NewServer(p)
	t.Cleanup(p.srv.Close)
	clock := sandboxtest.NewClock(t0)
	opts = append([]sandboxtest.Option{sandboxtest.WithClock(clock.Now), sandboxtest.WithConfig(func(c *sandbox.Config) { c.PublicURL = p.srv.URL })}, opts...)
	inst := sandboxtest.Start(t, opts...)
	p.inst = inst
	c := inst.NKPClient()
	for i, amt := range []nkp.Fen{1000, 333, 100} {
		seq := []string{"P1", "P2", "P3"}[i]
		if _, err := c.JSPay(ctx(t), nkp.JSPayRequest{ReqDate: day0, ReqSeqID: seq, HuifuID: sandbox.DevHuifuID, GoodsDesc: "goods",
			TradeType: upstream.TradeAlipayNative, TransAmt: amt}); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(time.Minute)
	inst.SettlePayment(t, day0, "P1", sandbox.ResultPaid)
	inst.SettlePayment(t, day0, "P2", sandbox.ResultPaid)
	inst.SettlePayment(t, day0, "P3", sandbox.ResultFailed)
	if _, err := c.Refund(ctx(t), nkp.RefundRequest{ReqDate: day0, ReqSeqID: "R1", HuifuID: sandbox.DevHuifuID, OrdAmt: 111, OrgReqDate: day0, OrgReqSeqID: "P2"}); err != nil {
		t.Fatal(err)
	}
	inst.SettleRefund(t, day0, "R1", sandbox.ResultSucceeded)
	return inst, p, clock
}

func newArchive(t *testing.T, inst *sandboxtest.Instance, dir string, retries int) *statements.Archive {
	t.Helper()
	a, err := statements.New(statements.Config{Dir: dir, MerchantID: sandbox.DevHuifuID, Upstream: inst.NKPClient(),
		Retries: retries, RetryWait: time.Millisecond, Now: func() time.Time { return t0 },
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// direct downloads a bill straight from the sandbox.
func direct(t *testing.T, inst *sandboxtest.Instance, bill string) []byte {
	t.Helper()
	resp, err := http.Get(inst.URL + "/bills/" + sandbox.DevHuifuID + "/" + bill + "/" + day0 + "/" + sandbox.BillFileName(sandbox.DevHuifuID, bill, day0))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return b
}

// TestFetchKeepsEveryBill fetches the four daily and two monthly bills,
// checks what was kept, and proves a second fetch downloads nothing.
func TestFetchKeepsEveryBill(t *testing.T) {
	inst, p, _ := startDay(t)
	dir := t.TempDir()
	a := newArchive(t, inst, dir, 1)
	var progressed atomic.Int64
	out, err := a.Fetch(ctx(t), day0, statements.DailyBills, func(_, _ string, done, total int64) {
		if total > 0 && done == total {
			progressed.Add(1)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 4 {
		t.Fatalf("outcomes = %+v", out)
	}
	for _, o := range out {
		if o.State != "downloaded" || o.Err != nil || len(o.Files) != 1 || o.Files[0].Checked != "sha-256" {
			t.Fatalf("%s: %+v", o.BillType, o)
		}
		got, err := os.ReadFile(o.Files[0].Path)
		if err != nil || !bytes.Equal(got, direct(t, inst, o.BillType)) {
			t.Fatalf("%s: kept bytes differ from the sandbox's (%v)", o.BillType, err)
		}
		if filepath.Dir(o.Files[0].Path) != filepath.Join(dir, sandbox.DevHuifuID, day0) {
			t.Fatalf("kept at %s", o.Files[0].Path)
		}
	}
	if progressed.Load() != 4 {
		t.Errorf("progress reported completion %d times, want 4", progressed.Load())
	}
	if n := len(p.downloads()); n != 4 {
		t.Fatalf("%d downloads, want 4", n)
	}
	// Again, from another archive on the same directory: nothing is
	// downloaded.
	again, err := newArchive(t, inst, dir, 1).Fetch(ctx(t), day0, statements.DailyBills, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range again {
		if o.State != "kept" || len(o.Files) != 1 {
			t.Fatalf("%s: %+v", o.BillType, o)
		}
	}
	if n := len(p.downloads()); n != 4 {
		t.Fatalf("the second fetch downloaded again: %d downloads", n)
	}
	// A kept file that lost bytes is fetched again.
	trade := again[0].Files[0]
	if err := os.Truncate(trade.Path, 10); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Ensure(ctx(t), nkp.BillTrade, day0); err != nil {
		t.Fatal(err)
	}
	if n := len(p.downloads()); n != 5 {
		t.Fatalf("a damaged file was not fetched again: %d downloads", n)
	}
	if got := a.List(day0); len(got) != 4 {
		t.Fatalf("List = %+v", got)
	}
	// Refetch downloads a kept file again, and keeps what the upstream
	// says now.
	if _, err := inst.Control.AddBillDifference(ctx(t), sandbox.BillDifference{Kind: sandbox.BillOmit, HuifuID: sandbox.DevHuifuID, ReqSeqID: "R1"}); err != nil {
		t.Fatal(err)
	}
	files, err := a.Refetch(ctx(t), nkp.BillTrade, day0)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(files[0].Path); !bytes.Equal(got, direct(t, inst, nkp.BillTrade)) || bytes.Contains(got, []byte(",R1,")) || len(p.downloads()) != 6 {
		t.Fatalf("refetched file is not the new one (%d downloads)", len(p.downloads()))
	}

	monthly, err := a.Fetch(ctx(t), "202506", statements.MonthlyBills, nil)
	if err != nil || len(monthly) != 2 || monthly[0].State != "downloaded" || monthly[1].FileDate != "202506" {
		t.Fatalf("monthly = %+v, %v", monthly, err)
	}
	if _, err := a.Fetch(ctx(t), day0, []string{"DAILY"}, nil); err == nil {
		t.Fatal("an unknown bill type was accepted")
	}
	if _, err := a.Fetch(ctx(t), "2025-06-15", statements.DailyBills, nil); err == nil {
		t.Fatal("a malformed date was accepted")
	}
	if _, err := a.Kept(nkp.BillTrade, "20250614"); !errors.Is(err, statements.ErrNotFound) {
		t.Fatalf("Kept of a day never fetched: %v", err)
	}
}

// abortHalf sends the first half of the sandbox's answer and breaks the
// connection.
func abortHalf(w http.ResponseWriter, r *http.Request, next http.Handler) {
	rec := httptest.NewRecorder()
	next.ServeHTTP(rec, r)
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	body := rec.Body.Bytes()
	_, _ = w.Write(body[:len(body)/2])
	w.(http.Flusher).Flush()
	panic(http.ErrAbortHandler)
}

// TestInterruptedDownloadResumes breaks a download halfway and proves the
// retry asks for the rest only and yields the same bytes.
func TestInterruptedDownloadResumes(t *testing.T) {
	inst, p, _ := startDay(t)
	want := direct(t, inst, nkp.BillTrade)
	p.disturb = func(n int, w http.ResponseWriter, r *http.Request, next http.Handler) bool {
		if n == 1 {
			abortHalf(w, r, next)
		}
		return false
	}
	a := newArchive(t, inst, t.TempDir(), 2)
	files, err := a.Ensure(ctx(t), nkp.BillTrade, day0)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(files[0].Path)
	if !bytes.Equal(got, want) || files[0].Checked != "sha-256" {
		t.Fatalf("resumed file differs: %d bytes, want %d", len(got), len(want))
	}
	reqs := p.downloads()
	if len(reqs) != 2 || reqs[0].Header.Get("Range") != "" {
		t.Fatalf("%d downloads", len(reqs))
	}
	if rng := reqs[1].Header.Get("Range"); rng != "bytes="+strconv.Itoa(len(want)/2)+"-" || reqs[1].Header.Get("If-Range") == "" {
		t.Fatalf("the retry asked for %q (If-Range %q), want the second half", rng, reqs[1].Header.Get("If-Range"))
	}
	if _, err := os.Stat(files[0].Path + ".part"); !os.IsNotExist(err) {
		t.Fatalf("the partial file is left behind: %v", err)
	}
}

// TestPartialFileSurvivesAFailedFetch leaves a fetch failed halfway, as a
// process that stopped would, and resumes it with a new archive.
func TestPartialFileSurvivesAFailedFetch(t *testing.T) {
	inst, p, _ := startDay(t)
	want := direct(t, inst, nkp.BillSettle)
	p.disturb = func(n int, w http.ResponseWriter, r *http.Request, next http.Handler) bool {
		switch n {
		case 1:
			abortHalf(w, r, next)
		case 2:
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return true
		}
		return false
	}
	dir := t.TempDir()
	out, err := newArchive(t, inst, dir, 1).Fetch(ctx(t), day0, []string{nkp.BillSettle}, nil)
	if err != nil || out[0].State != "failed" || out[0].Err == nil {
		t.Fatalf("outcome = %+v, %v", out, err)
	}
	dest := filepath.Join(dir, sandbox.DevHuifuID, day0, sandbox.BillFileName(sandbox.DevHuifuID, nkp.BillSettle, day0))
	part, err := os.ReadFile(dest + ".part")
	if err != nil || !bytes.Equal(part, want[:len(want)/2]) {
		t.Fatalf("partial file = %q, %v", part, err)
	}
	if _, err := os.Stat(dest); !os.IsNotExist(err) {
		t.Fatal("an incomplete file was kept under its own name")
	}
	files, err := newArchive(t, inst, dir, 1).Ensure(ctx(t), nkp.BillSettle, day0)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(files[0].Path)
	if !bytes.Equal(got, want) {
		t.Fatal("resumed file differs")
	}
	if reqs := p.downloads(); len(reqs) != 3 || reqs[2].Header.Get("Range") != "bytes="+strconv.Itoa(len(want)/2)+"-" {
		t.Fatalf("the new archive did not resume: %d downloads", len(reqs))
	}
}

// TestCorruptDownloadIsRefused changes a byte in flight: the digest check
// refuses the file and nothing is kept.
func TestCorruptDownloadIsRefused(t *testing.T) {
	inst, p, _ := startDay(t)
	p.disturb = func(_ int, w http.ResponseWriter, r *http.Request, next http.Handler) bool {
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		body := rec.Body.Bytes()
		body[len(body)-5] ^= 1
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body)
		return true
	}
	dir := t.TempDir()
	a := newArchive(t, inst, dir, 1)
	out, err := a.Fetch(ctx(t), day0, []string{nkp.BillTrade}, nil)
	if err != nil || out[0].State != "failed" || !strings.Contains(out[0].Err.Error(), "SHA-256") {
		t.Fatalf("outcome = %+v, %v", out, err)
	}
	if got := a.List(day0); len(got) != 0 {
		t.Fatalf("a corrupt file was kept: %+v", got)
	}
	if len(p.downloads()) != 2 {
		t.Fatalf("%d downloads, want a first try and one retry", len(p.downloads()))
	}
}

// TestPendingBill is not ready upstream, then is.
func TestPendingBill(t *testing.T) {
	inst, _, _ := startDay(t)
	if _, err := inst.Control.AddBillDifference(ctx(t), sandbox.BillDifference{Kind: sandbox.BillPending, HuifuID: sandbox.DevHuifuID, BillType: nkp.BillSettle, Date: day0}); err != nil {
		t.Fatal(err)
	}
	a := newArchive(t, inst, t.TempDir(), 1)
	out, err := a.Fetch(ctx(t), day0, []string{nkp.BillSettle, nkp.BillTrade}, nil)
	if err != nil || out[0].State != "pending" || !errors.Is(out[0].Err, statements.ErrNotReady) || out[1].State != "downloaded" {
		t.Fatalf("outcomes = %+v, %v", out, err)
	}
	if err := inst.Control.ClearBillDifferences(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if out, _ := a.Fetch(ctx(t), day0, []string{nkp.BillSettle}, nil); out[0].State != "downloaded" {
		t.Fatalf("after it is ready: %+v", out)
	}
}
