// Package sandboxtest runs the sandbox upstream inside a test: Start serves
// it on 127.0.0.1 with the sandbox-only DevKeys and hands back its URL, the
// keys, an nkp.Client for the dev merchant and a typed client for the
// simulation controls, so a test in any package can place orders, settle
// them, read the notifications sent and prove that nothing reached the
// upstream.
package sandboxtest

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/paysidecar/paysidecar/sandbox"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
)

// Option adjusts the Config of a sandbox before it starts.
type Option func(*sandbox.Config)

// WithConfig lets fn change any part of the Config.
func WithConfig(fn func(*sandbox.Config)) Option { return Option(fn) }

// WithSeed sets the seed of ids and fault injection.
func WithSeed(seed int64) Option { return func(c *sandbox.Config) { c.Seed = seed } }

// WithClock makes the sandbox tell time by now, for example a Clock's Now.
func WithClock(now func() time.Time) Option { return func(c *sandbox.Config) { c.Clock = now } }

// WithProfile sets the dialect of answers and notifications.
func WithProfile(p nkp.Profile) Option { return func(c *sandbox.Config) { c.Profile = p } }

// WithAutoSettle starts the sandbox in an auto-settlement mode.
func WithAutoSettle(a sandbox.AutoSettle) Option { return func(c *sandbox.Config) { c.AutoSettle = a } }

// WithFaults starts the sandbox with fault injection on.
func WithFaults(f sandbox.Faults) Option { return func(c *sandbox.Config) { c.Faults = f } }

// TestBackoff is the delay between notification attempts in a sandbox
// started by Start, unless an option sets another: 10 ms times the number
// of the failed attempt.
func TestBackoff(attempt int) time.Duration { return time.Duration(attempt) * 10 * time.Millisecond }

// Instance is a sandbox running for one test.
type Instance struct {
	// URL is the sandbox's base URL, http://127.0.0.1:port.
	URL string
	// Server is the running sandbox.
	Server *sandbox.Server
	// Keys are the sandbox-only keys it runs with.
	Keys sandbox.DevKeySet
	// Control drives the simulation controls.
	Control *sandbox.ControlClient
	// HTTP is a client for the sandbox whose connections close with it.
	HTTP *http.Client
	// SysID, ProductID and HuifuID are the dev merchant's identity.
	SysID, ProductID, HuifuID string
	// Config is the configuration the sandbox was started with, after the
	// options (before New filled in its defaults).
	Config sandbox.Config
}

// Start runs a sandbox on 127.0.0.1:0 with DevKeys, a notification backoff
// of TestBackoff and the given options, and stops it when the test ends.
func Start(t testing.TB, opts ...Option) *Instance {
	t.Helper()
	keys, err := sandbox.DevKeys()
	if err != nil {
		t.Fatalf("sandboxtest: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("sandboxtest: listen: %v", err)
	}
	url := "http://" + ln.Addr().String()
	cfg := sandbox.Config{PublicURL: url, NotifyBackoff: TestBackoff}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := sandbox.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		_ = ln.Close()
		t.Fatalf("sandboxtest: %v", err)
	}
	hs := httptest.NewUnstartedServer(srv.Handler())
	_ = hs.Listener.Close()
	hs.Listener = ln
	hs.Start()
	t.Cleanup(func() {
		_ = srv.Close()
		hs.Close()
	})
	hc := hs.Client()
	return &Instance{
		URL:       url,
		Server:    srv,
		Keys:      keys,
		Control:   &sandbox.ControlClient{BaseURL: url, HTTP: hc},
		HTTP:      hc,
		SysID:     sandbox.DevSysID,
		ProductID: sandbox.DevProductID,
		HuifuID:   sandbox.DevHuifuID,
		Config:    cfg,
	}
}

// NKPClient returns a client that signs as the dev merchant and verifies
// answers with the dev upstream key, in the sandbox's dialect.
func (i *Instance) NKPClient() *nkp.Client {
	p := i.Config.Profile
	if p == "" {
		p = nkp.ProfileNKP
	}
	return &nkp.Client{
		BaseURL:     i.URL,
		SysID:       i.SysID,
		ProductID:   i.ProductID,
		Profile:     p,
		Key:         i.Keys.Merchant.Private,
		UpstreamKey: i.Keys.Upstream.Public,
		HTTP:        i.HTTP,
	}
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// Stats returns the ledger statistics of huifuID ("" for all merchants).
func (i *Instance) Stats(t testing.TB, huifuID string) sandbox.Stats {
	t.Helper()
	st, err := i.Control.Stats(ctx(t), huifuID)
	if err != nil {
		t.Fatalf("sandboxtest: %v", err)
	}
	return st
}

// Notifications lists the notification deliveries matching f.
func (i *Instance) Notifications(t testing.TB, f sandbox.Filter) []sandbox.NotificationRecord {
	t.Helper()
	out, err := i.Control.Notifications(ctx(t), f)
	if err != nil {
		t.Fatalf("sandboxtest: %v", err)
	}
	return out
}

// WaitNotifications polls the deliveries matching f until done accepts
// them, and fails the test if that takes longer than timeout.
func (i *Instance) WaitNotifications(t testing.TB, f sandbox.Filter, timeout time.Duration, done func([]sandbox.NotificationRecord) bool) []sandbox.NotificationRecord {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		recs := i.Notifications(t, f)
		if done(recs) {
			return recs
		}
		if time.Now().After(deadline) {
			t.Fatalf("sandboxtest: notifications matching %+v did not reach the expected state within %v; last: %+v", f, timeout, recs)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Finished reports whether every record has reached a final delivery state
// and there is at least one.
func Finished(recs []sandbox.NotificationRecord) bool {
	if len(recs) == 0 {
		return false
	}
	for _, r := range recs {
		switch r.State {
		case sandbox.DeliveryDelivered, sandbox.DeliveryFailed, sandbox.DeliveryDropped, sandbox.DeliveryStopped:
		default:
			return false
		}
	}
	return true
}

// SettlePayment settles the dev merchant's payment reqDate/reqSeqID with
// result (sandbox.ResultPaid or sandbox.ResultFailed).
func (i *Instance) SettlePayment(t testing.TB, reqDate, reqSeqID, result string) sandbox.Order {
	t.Helper()
	o, err := i.Control.SettlePayment(ctx(t), sandbox.SettleRequest{HuifuID: i.HuifuID, ReqDate: reqDate, ReqSeqID: reqSeqID, Result: result})
	if err != nil {
		t.Fatalf("sandboxtest: %v", err)
	}
	return o
}

// SettleRefund settles the dev merchant's refund reqDate/reqSeqID with
// result (sandbox.ResultSucceeded or sandbox.ResultFailed).
func (i *Instance) SettleRefund(t testing.TB, reqDate, reqSeqID, result string) sandbox.Refund {
	t.Helper()
	r, err := i.Control.SettleRefund(ctx(t), sandbox.SettleRequest{HuifuID: i.HuifuID, ReqDate: reqDate, ReqSeqID: reqSeqID, Result: result})
	if err != nil {
		t.Fatalf("sandboxtest: %v", err)
	}
	return r
}

// MintWeChatCode issues a WeChat code for user of appID.
func (i *Instance) MintWeChatCode(t testing.TB, appID, user string) sandbox.WeChatCode {
	t.Helper()
	c, err := i.Control.MintWeChatCode(ctx(t), appID, user)
	if err != nil {
		t.Fatalf("sandboxtest: %v", err)
	}
	return c
}

// Clock is a clock a test moves by hand; pass its Now to WithClock.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a Clock that starts at start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}
