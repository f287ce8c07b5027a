package e2e

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/paysidecar/paysidecar/sandbox"
	"github.com/paysidecar/paysidecar/sandbox/sandboxtest"
	"github.com/paysidecar/paysidecar/sdk/client"
)

// TestNotifyPortLimits: the notify.* limits reach the running sidecar's
// public port, and a genuine notification still gets through.
func TestNotifyPortLimits(t *testing.T) {
	sb := sandboxtest.Start(t)
	e, api, notify, admin := sidecarEnv(t, sb.URL, t.TempDir(),
		"PAYSIDECAR_NOTIFY__RATE_PER_SOURCE=0.001", "PAYSIDECAR_NOTIFY__BURST_PER_SOURCE=2",
		"PAYSIDECAR_NOTIFY__MAX_HEADER_BYTES=1024", "PAYSIDECAR_NOTIFY__MAX_CONNS_PER_SOURCE=2",
		"PAYSIDECAR_NOTIFY__MAX_BODY_BYTES=4096")
	sc := startSidecar(t, e, api, notify, admin)
	host := strings.TrimSuffix(strings.TrimPrefix(sc.Notify, "http://"), "/notify")

	from := func(local string) *http.Client {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
	}
	post := func(hc *http.Client, body string, header int) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, sc.Notify, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if header > 0 {
			req.Header.Set("X-Pad", strings.Repeat("p", header))
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	a := from("127.0.0.2")
	// Refused while the headers are read, before the rate is counted.
	if code := post(a, "x=1", 8<<10); code != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("8 KiB of headers: %d, want 431", code)
	}
	if code := post(a, "resp_data="+strings.Repeat("x", 5000), 0); code != http.StatusRequestEntityTooLarge {
		t.Errorf("5000-byte body: %d, want 413", code)
	}
	if code := post(a, "x=1", 0); code == http.StatusTooManyRequests {
		t.Errorf("second request within the burst of 2: 429")
	}
	if code := post(a, "x=1", 0); code != http.StatusTooManyRequests {
		t.Errorf("third request: %d, want 429", code)
	}
	if code := post(from("127.0.0.3"), "x=1", 0); code == http.StatusTooManyRequests {
		t.Error("another source was limited")
	}
	if v := sc.metric("paysidecar_notify_rejected_total", `reason="rate_limited"`); v != 1 {
		t.Errorf("rejected{rate_limited} = %v, want 1", v)
	}

	// Two connections from one source are kept; a third is closed.
	var conns []net.Conn
	for range 3 {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.4")}}
		c, err := d.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	_ = conns[2].SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := conns[2].Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("third connection from one source: read %d, %v; want it closed", n, err)
	}
	if _, err := io.WriteString(conns[0], "GET /notify HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if resp, err := http.ReadResponse(bufio.NewReader(conns[0]), nil); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("first connection: %v %v, want 405", resp, err)
	}

	// The upstream's genuine notification is accepted.
	p, err := sc.Client.CreatePayment(ctxTimeout(t, time.Minute), client.CreatePaymentRequest{
		Flow: client.FlowAlipayNative, OutTradeNo: "limits-1", AmountFen: 1, Description: "limits"})
	if err != nil {
		t.Fatal(err)
	}
	sb.SettlePayment(t, p.ReqDate, p.ReqSeqID, sandbox.ResultPaid)
	recs := sb.WaitNotifications(t, sandbox.Filter{ReqSeqID: p.ReqSeqID}, 20*time.Second, sandboxtest.Finished)
	if recs[0].State != sandbox.DeliveryDelivered || len(recs[0].Attempts) != 1 {
		t.Errorf("genuine notification: %s after %d attempts", recs[0].State, len(recs[0].Attempts))
	}
}
