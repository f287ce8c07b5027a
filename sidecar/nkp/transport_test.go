package nkp

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// keepAliveUpstream answers every order as accepted and counts the
// connections it accepts. When a round of n calls is armed, each call
// waits until all n are in flight, so that the round needs n connections
// at once.
type keepAliveUpstream struct {
	*upstream
	accepted atomic.Int64

	mu      sync.Mutex
	waiting int
	release chan struct{}
}

func newKeepAliveUpstream(t *testing.T) *keepAliveUpstream {
	t.Helper()
	k := &keepAliveUpstream{}
	k.upstream = &upstream{t: t, key: upstreamKey(t), merch: merchantPub(t), handler: func(w http.ResponseWriter, r *http.Request, data map[string]any) {
		k.arrive(r.Context())
		k.reply(w, map[string]any{"resp_code": CodeAccepted, "resp_desc": "ok", "req_seq_id": data["req_seq_id"], "trans_stat": StatProcessing})
	}}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(k.serve))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			k.accepted.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	k.srv = srv
	return k
}

// arm makes the next n calls wait for each other.
func (k *keepAliveUpstream) arm(n int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.waiting, k.release = n, make(chan struct{})
}

func (k *keepAliveUpstream) arrive(ctx context.Context) {
	k.mu.Lock()
	if k.release == nil {
		k.mu.Unlock()
		return
	}
	release := k.release
	if k.waiting--; k.waiting == 0 {
		close(release)
		k.release = nil
	}
	k.mu.Unlock()
	select {
	case <-release:
	case <-ctx.Done():
	}
}

func (k *keepAliveUpstream) order(ctx context.Context, c *Client) error {
	now := time.Now()
	_, err := c.JSPay(ctx, JSPayRequest{ReqDate: ReqDate(now), ReqSeqID: NewReqSeqID(now), HuifuID: "6666000100000000",
		GoodsDesc: "keep-alive", TradeType: "A_NATIVE", TransAmt: 1, NotifyURL: "http://127.0.0.1:8001/notify"})
	return err
}

// TestClientReusesConnections sends calls one after another and then
// rounds of concurrent calls: every call after the first round rides a
// connection kept from an earlier one. With net/http's default of two
// idle connections per host, the second concurrent round would open all
// but two of its connections anew.
func TestClientReusesConnections(t *testing.T) {
	for _, tc := range []struct {
		name string
		http *http.Client
	}{
		{"NewTransport", &http.Client{Transport: NewTransport(0)}},
		{"no client of its own", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newKeepAliveUpstream(t)
			c := k.client(ProfileNKP)
			c.HTTP = tc.http
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			for i := range 20 {
				if err := k.order(ctx, c); err != nil {
					t.Fatalf("sequential call %d: %v", i, err)
				}
			}
			if n := k.accepted.Load(); n != 1 {
				t.Fatalf("20 sequential calls opened %d connections, want 1", n)
			}
			const concurrency = 32
			for round := range 3 {
				k.arm(concurrency)
				var wg sync.WaitGroup
				errs := make(chan error, concurrency)
				for range concurrency {
					wg.Go(func() { errs <- k.order(ctx, c) })
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					if err != nil {
						t.Fatalf("round %d: %v", round, err)
					}
				}
				if n := k.accepted.Load(); n != concurrency {
					t.Fatalf("after round %d of %d concurrent calls: %d connections accepted, want %d (one per call in flight, all reused afterwards)",
						round, concurrency, n, concurrency)
				}
			}
		})
	}
}
