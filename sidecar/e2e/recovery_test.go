package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/paysidecar/paysidecar/sandbox"
	"github.com/paysidecar/paysidecar/sandbox/sandboxtest"
	"github.com/paysidecar/paysidecar/sdk/client"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
)

// The tests of this file hold the promise "a 4xx means nothing happened"
// after a lost answer: a repeated create answers the payment as it really
// stands, never with a 4xx, and no wrong answer is kept for an
// Idempotency-Key.

// bookThenFail makes the sandbox book every order and answer HTTP 500.
var bookThenFail = sandbox.Faults{API: sandbox.APIFaults{Status500Rate: 1, Paths: []string{nkp.PathJSPay}}}

func setFaults(t *testing.T, sb *sandboxtest.Instance, f sandbox.Faults) {
	t.Helper()
	if err := sb.Control.SetFaults(ctxTimeout(t, 5*time.Second), f); err != nil {
		t.Fatal(err)
	}
}

func lostAnswerBody(out string) string {
	return fmt.Sprintf(`{"flow":"alipay-native","out_trade_no":%q,"amount_fen":25,"description":"lost answer"}`, out)
}

// placeWithLostAnswer creates a payment whose order the upstream books
// while answering HTTP 500, and checks the caller gets a 502.
func placeWithLostAnswer(t *testing.T, e *env, out, key string) client.Payment {
	t.Helper()
	setFaults(t, e.sb, bookThenFail)
	a := post(t, e.sc.API+"/v1/payments", key, lostAnswerBody(out))
	setFaults(t, e.sb, sandbox.Faults{})
	if a.status != http.StatusBadGateway || errCode(a.body) != "upstream_unavailable" {
		t.Fatalf("create with a lost answer: %d %s", a.status, a.body)
	}
	if n := e.sb.Stats(t, e.sb.HuifuID).Orders; n != 1 {
		t.Fatalf("the upstream booked %d orders, want 1", n)
	}
	var p client.Payment
	if err := e.sc.Client.Do(ctxTimeout(t, 10*time.Second), http.MethodGet, "/v1/payments?out_trade_no="+out, nil, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRetryAfterLostAnswerOfAFailedOrder(t *testing.T) {
	e := newEnv(t)
	p := placeWithLostAnswer(t, e, "lost-failed", "key-lost-failed")
	if _, err := e.sb.Control.SettlePayment(ctxTimeout(t, 5*time.Second), sandbox.SettleRequest{HuifuID: e.sb.HuifuID,
		ReqDate: p.ReqDate, ReqSeqID: p.ReqSeqID, Result: sandbox.ResultFailed, BankCode: "NOTENOUGH", BankMessage: "balance too low"}); err != nil {
		t.Fatal(err)
	}
	e.waitStatus(t, p.ID, client.StatusFailed)

	a := post(t, e.sc.API+"/v1/payments", "key-lost-failed", lostAnswerBody("lost-failed"))
	var got client.Payment
	if err := json.Unmarshal(a.body, &got); err != nil || a.status != http.StatusOK || a.replayed ||
		got.ID != p.ID || got.Status != client.StatusFailed {
		t.Fatalf("retry after the order failed upstream: %d replayed=%v %s; want 200 with the failed payment", a.status, a.replayed, a.body)
	}
	// The payment says why it failed, and so does its event.
	if got.FailureCode != "NOTENOUGH" || got.FailureMessage != "balance too low" {
		t.Fatalf("failure on the payment = %q %q", got.FailureCode, got.FailureMessage)
	}
	if ev := e.waitEvent(t, client.EventPaymentFailed, p.ID); ev.Event.Data.Payment.FailureCode != "NOTENOUGH" {
		t.Fatalf("event payment = %+v", ev.Event.Data.Payment)
	}
	// The answer kept for the key is that one.
	b := post(t, e.sc.API+"/v1/payments", "key-lost-failed", lostAnswerBody("lost-failed"))
	if b.status != http.StatusOK || !b.replayed || !bytes.Equal(bytes.TrimSpace(a.body), bytes.TrimSpace(b.body)) {
		t.Fatalf("replay = %d replayed=%v %s, want %s", b.status, b.replayed, b.body, a.body)
	}
	// Without the key as well.
	c := post(t, e.sc.API+"/v1/payments", "", lostAnswerBody("lost-failed"))
	if c.status != http.StatusOK || !strings.Contains(string(c.body), `"status":"failed"`) {
		t.Fatalf("retry without a key: %d %s", c.status, c.body)
	}
	if n := e.sb.Stats(t, e.sb.HuifuID).Orders; n != 1 {
		t.Fatalf("the upstream booked %d orders, want 1", n)
	}
}

func TestRetryAfterLostAnswerOfAnOpenOrder(t *testing.T) {
	clock := sandboxtest.NewClock(time.Now())
	e := newEnvWith(t, []sandboxtest.Option{sandboxtest.WithClock(clock.Now)})
	p := placeWithLostAnswer(t, e, "lost-open", "key-lost-open")
	// The reverse query sees the order booked and open.
	e.waitStatus(t, p.ID, client.StatusProcessing)

	// The old order is younger than a minute and cannot be closed yet: the
	// answer says how the payment stands, is not kept, and asks to retry.
	a := post(t, e.sc.API+"/v1/payments", "key-lost-open", lostAnswerBody("lost-open"))
	var got client.Payment
	if err := json.Unmarshal(a.body, &got); err != nil || a.status != http.StatusAccepted || a.replayed ||
		got.ID != p.ID || got.Status != client.StatusProcessing || len(got.PayParams) != 0 {
		t.Fatalf("retry of a young lost order: %d replayed=%v %s; want 202 with the processing payment", a.status, a.replayed, a.body)
	}

	clock.Advance(2 * time.Minute)
	b := post(t, e.sc.API+"/v1/payments", "key-lost-open", lostAnswerBody("lost-open"))
	if err := json.Unmarshal(b.body, &got); err != nil || b.status != http.StatusOK || b.replayed || got.ID != p.ID {
		t.Fatalf("retry once the lost order can be closed: %d replayed=%v %s", b.status, b.replayed, b.body)
	}
	var pp struct {
		QRCode string `json:"qr_code"`
	}
	if err := json.Unmarshal(got.PayParams, &pp); err != nil || !strings.HasPrefix(pp.QRCode, e.sb.URL) {
		t.Fatalf("pay parameters %s carry no cashier URL", got.PayParams)
	}
	if got.ReqSeqID == p.ReqSeqID {
		t.Fatalf("the payment still stands for its lost order %s", p.ReqSeqID)
	}
	c := post(t, e.sc.API+"/v1/payments", "key-lost-open", lostAnswerBody("lost-open"))
	if c.status != http.StatusOK || !c.replayed || !bytes.Equal(bytes.TrimSpace(b.body), bytes.TrimSpace(c.body)) {
		t.Fatalf("replay = %d replayed=%v %s", c.status, c.replayed, c.body)
	}
	orders, err := e.sb.Control.Orders(ctxTimeout(t, 5*time.Second), sandbox.Filter{HuifuID: e.sb.HuifuID})
	if err != nil {
		t.Fatal(err)
	}
	if len(orders) != 2 || orders[0].ReqSeqID != p.ReqSeqID || orders[0].ClosedBy != "close" || orders[1].ReqSeqID != got.ReqSeqID {
		t.Fatalf("upstream orders = %+v; want the lost one closed and the new one open", orders)
	}

	// The buyer pays through the new parameters.
	resp, err := http.PostForm(pp.QRCode, url.Values{"action": {"pay"}})
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	ev := e.waitEvent(t, client.EventPaymentSucceeded, p.ID)
	if ev.Event.Data.Payment.ReqSeqID != got.ReqSeqID {
		t.Fatalf("event about order %s, want %s", ev.Event.Data.Payment.ReqSeqID, got.ReqSeqID)
	}
	for _, r := range e.hook.received() {
		if r.Event.Type == client.EventPaymentClosed {
			t.Fatalf("closing the lost order was reported as the payment's: %s", r.Body)
		}
	}
}

// findPluginPID returns the pid of the named plugin of the sidecar, if it
// is running.
func (s *sidecar) findPluginPID(name string) (int, bool) {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		rest := string(stat[bytes.LastIndexByte(stat, ')')+2:])
		fields := strings.Fields(rest)
		if len(fields) < 2 || fields[1] != strconv.Itoa(s.cmd.Process.Pid) {
			continue
		}
		if exe, _ := os.Readlink(filepath.Join("/proc", e.Name(), "exe")); filepath.Base(exe) == name {
			return pid, true
		}
	}
	return 0, false
}

// TestPluginKilledWhileACreateIsInFlight kills the flow plugin, again and
// again, while the create's order is with the upstream: the create no
// longer needs the plugin once it has shaped the order (the host builds
// the pay parameters from the flow's pay recipe), so it is answered in
// full, once, the replay gives the same answer, and one order is booked.
func TestPluginKilledWhileACreateIsInFlight(t *testing.T) {
	e := newEnvWith(t, []sandboxtest.Option{sandboxtest.WithFaults(sandbox.Faults{
		API: sandbox.APIFaults{LatencyMS: 300, Paths: []string{nkp.PathJSPay}},
	})})
	before := e.sb.Stats(t, "").Requests[nkp.PathJSPay]
	body := `{"flow":"alipay-native","out_trade_no":"killed-in-flight","amount_fen":33,"description":"kill"}`
	done := make(chan answer, 1)
	go func() {
		// Not post: t.Fatal belongs to the test's own goroutine.
		req, _ := http.NewRequest(http.MethodPost, e.sc.API+"/v1/payments", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", "key-killed")
		var a answer
		if resp, err := http.DefaultClient.Do(req); err == nil {
			a.status = resp.StatusCode
			a.body, _ = io.ReadAll(resp.Body)
			_ = resp.Body.Close()
		} else {
			a.body = []byte(err.Error())
		}
		done <- a
	}()

	// Once the order is on its way upstream, the plugin dies and stays dead
	// until the create has answered.
	waitFor(t, 20*time.Second, "the order to reach the upstream", func() (bool, string) {
		return e.sb.Stats(t, "").Requests[nkp.PathJSPay] > before, ""
	})
	var first answer
	killed := 0
	func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			if pid, ok := e.sc.findPluginPID("alipay-native"); ok && syscall.Kill(pid, syscall.SIGKILL) == nil {
				killed++
			}
			select {
			case first = <-done:
				return
			case <-tick.C:
			}
		}
	}()
	if killed == 0 {
		t.Fatal("the plugin was never killed")
	}
	var p client.Payment
	if err := json.Unmarshal(first.body, &p); err != nil || first.status != http.StatusCreated ||
		p.Status != client.StatusProcessing || cashierURL(p.PayParams, e.sb.URL) == "" || p.NkpSeqID == "" {
		t.Fatalf("create while the plugin died: %d %s; want 201 with the payment and its pay parameters", first.status, first.body)
	}
	again := post(t, e.sc.API+"/v1/payments", "key-killed", body)
	if !again.replayed || !bytes.Equal(bytes.TrimSpace(again.body), bytes.TrimSpace(first.body)) {
		t.Fatalf("replay = %d replayed=%v %s", again.status, again.replayed, again.body)
	}
	if n := e.sb.Stats(t, e.sb.HuifuID).Orders; n != 1 {
		t.Fatalf("the upstream booked %d orders, want 1", n)
	}
}
