package sandbox_test

import (
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paysidecar/paysidecar/sandbox"
	"github.com/paysidecar/paysidecar/sandbox/sandboxtest"
	"github.com/paysidecar/paysidecar/sdk/upstream"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
)

func getPage(t *testing.T, link string) (int, string) {
	t.Helper()
	resp, err := http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// relink points a link handed out by one sandbox at another's address.
func relink(t *testing.T, link, base string) string {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	return base + u.Path
}

// TestStateSurvivesARestart pays an order in the cashier, restarts the
// sandbox on the same state file, and finds the old order and its link as
// they were, while a new order gets a new link and id.
func TestStateSurvivesARestart(t *testing.T) {
	file := filepath.Join(t.TempDir(), ".paysidecar", "sandbox.json")
	withState := sandboxtest.WithConfig(func(c *sandbox.Config) { c.StateFile = file })
	first, _ := start(t, withState)

	native := with(order("OLD1"), "trade_type", upstream.TradeAlipayNative, "wx_data", nil, "trans_amt", "12.34")
	out := placeOrder(t, first, native)
	link := out["qr_code"].(string)
	oldSeq := out["nkp_seq_id"].(string)
	placeOrder(t, first, order("OLD2"))
	resp, err := http.PostForm(link, url.Values{"action": {"pay"}})
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if _, page := getPage(t, link); !strings.Contains(page, "paid") {
		t.Fatalf("the cashier does not show the order paid before the restart:\n%s", page)
	}
	if err := first.Server.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if _, err := os.Stat(file); err != nil {
		t.Fatalf("no state file after close: %v", err)
	}

	second, _ := start(t, withState)
	status, page := getPage(t, relink(t, link, second.URL))
	if status != http.StatusOK || !strings.Contains(page, "OLD1") || !strings.Contains(page, "12.34") || !strings.Contains(page, "paid") {
		t.Fatalf("after the restart the old cashier link answers %d:\n%s", status, page)
	}
	q := call(t, second, nkp.PathPaymentQuery, map[string]any{"huifu_id": sandbox.DevHuifuID, "org_req_date": day0, "org_req_seq_id": "OLD1"})
	if q["trans_stat"] != nkp.StatSuccess || q["trans_amt"] != "12.34" {
		t.Errorf("the old order after the restart: %v", q)
	}
	dup := call(t, second, nkp.PathJSPay, order("OLD2"))
	wantCode(t, dup, nkp.CodeDuplicate, "")

	fresh := placeOrder(t, second, with(native, "req_seq_id", "NEW1"))
	if fresh["qr_code"] == link || fresh["nkp_seq_id"] == oldSeq {
		t.Fatalf("a new order reused the old one's link or id: %v", fresh)
	}
	if _, page := getPage(t, relink(t, link, second.URL)); !strings.Contains(page, "OLD1") {
		t.Fatalf("the old link now opens another order:\n%s", page)
	}
}

// TestStateFileRefusedWhenUnreadable checks that a damaged state file
// stops the sandbox rather than being replaced by an empty ledger.
func TestStateFileRefusedWhenUnreadable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "sandbox.json")
	if err := os.WriteFile(file, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := sandbox.New(sandbox.Config{StateFile: file}, nil); err == nil || !strings.Contains(err.Error(), file) {
		t.Fatalf("New with a damaged state file: %v", err)
	}
	if b, _ := os.ReadFile(file); string(b) != "{not json" {
		t.Fatal("the damaged file was overwritten")
	}
}
