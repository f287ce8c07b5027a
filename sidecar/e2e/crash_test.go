package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/paysidecar/paysidecar/sandbox"
	"github.com/paysidecar/paysidecar/sandbox/sandboxtest"
	"github.com/paysidecar/paysidecar/sdk/client"
)

// crashPayments is how many payments a crash test settles. With the
// sandbox's duplicates and retries they make thousands of notifications.
const crashPayments = 1000

// notifyBalancer stands in for a Kubernetes Service in front of the
// notify listeners of several replicas: each request goes to the next
// replica that answers.
type notifyBalancer struct {
	backends []string
	next     atomic.Uint64
	srv      *http.Server
	Addr     string
}

func newNotifyBalancer(t *testing.T, backends []string) *notifyBalancer {
	b := &notifyBalancer{backends: backends}
	addr := freeNotifyPort(t)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	b.Addr = ln.Addr().String()
	b.srv = &http.Server{Handler: b, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = b.srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = b.srv.Close()
		<-done
	})
	return b
}

func (b *notifyBalancer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	start := b.next.Add(1)
	for i := range len(b.backends) {
		target := b.backends[(int(start)+i)%len(b.backends)]
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, target, bytes.NewReader(body))
		req.Header = r.Header.Clone()
		resp, err := hc.Do(req)
		if err != nil {
			continue // that replica is down; try the next
		}
		rb, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(rb)
		return
	}
	w.WriteHeader(http.StatusBadGateway)
}

// crashRun creates payments through the replicas, settles them in the
// sandbox while the replicas are killed with SIGKILL at random moments and
// restarted, and then checks what reached the application.
func crashRun(t *testing.T, replicas int, storeEnv []string) {
	sb := sandboxtest.Start(t,
		sandboxtest.WithFaults(sandbox.Faults{Notify: sandbox.NotifyFaults{DuplicateRate: 0.5, ReorderRate: 0.2, TamperRate: 0.05}}),
		sandboxtest.WithConfig(func(c *sandbox.Config) {
			c.NotifyBackoff = func(attempt int) time.Duration { return time.Duration(attempt) * 300 * time.Millisecond }
		}),
	)
	hook := newWebhookSink(t)
	var scs []*sidecar
	var notifyURLs []string
	envs := make([][]string, replicas)
	apis, admins := make([]string, replicas), make([]string, replicas)
	dir := t.TempDir()
	for i := range replicas {
		e, api, notify, admin := sidecarEnv(t, sb.URL, dir, append(hook.env(), storeEnv...)...)
		envs[i], apis[i], admins[i] = e, api, admin
		notifyURLs = append(notifyURLs, notify)
	}
	public := ""
	if replicas > 1 {
		lb := newNotifyBalancer(t, notifyURLs)
		public = "http://" + lb.Addr + "/notify"
	}
	for i := range replicas {
		e := envs[i]
		if public != "" {
			e = append(e, "PAYSIDECAR_NOTIFY__PUBLIC_URL="+public)
		}
		scs = append(scs, startSidecar(t, e, apis[i], notifyURLs[i], admins[i]))
	}

	// Create the payments, spread over the replicas.
	payments := make([]client.Payment, crashPayments)
	var wg sync.WaitGroup
	var next atomic.Int64
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= crashPayments {
					return
				}
				req := client.CreatePaymentRequest{Flow: client.FlowAlipayNative, OutTradeNo: fmt.Sprintf("crash-%d", i), AmountFen: int64(1 + i), Description: "crash"}
				if i%3 == 0 {
					req.Flow, req.Buyer = client.FlowWeChatJSAPI, &client.Buyer{OpenID: fmt.Sprintf("o-crash-%d", i)}
				}
				p, err := scs[(i+w)%replicas].Client.CreatePayment(context.Background(), req)
				if err != nil {
					t.Errorf("create %d: %v", i, err)
					return
				}
				payments[i] = p
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	// Settle them all while the replicas are killed and restarted.
	want := map[string]string{} // payment id -> event type
	for i, p := range payments {
		if i%5 == 4 {
			want[p.ID] = client.EventPaymentFailed
		} else {
			want[p.ID] = client.EventPaymentSucceeded
		}
	}
	settled := make(chan struct{})
	go func() {
		defer close(settled)
		for i, p := range payments {
			result := sandbox.ResultPaid
			if i%5 == 4 {
				result = sandbox.ResultFailed
			}
			if _, err := sb.Control.SettlePayment(context.Background(), sandbox.SettleRequest{HuifuID: sb.HuifuID, ReqDate: p.ReqDate, ReqSeqID: p.ReqSeqID, Result: result}); err != nil {
				t.Errorf("settle %s: %v", p.ID, err)
				return
			}
			if i%20 == 0 {
				time.Sleep(5 * time.Millisecond) // spread the settlements over the kills
			}
		}
	}()
	rng := rand.New(rand.NewPCG(uint64(replicas), 42))
	kills := 0
	deadline := time.After(90 * time.Second)
	settledAt := time.Time{}
loop:
	for {
		select {
		case <-settled:
			if settledAt.IsZero() {
				settledAt = time.Now()
			}
			settled = nil
		case <-deadline:
			break loop
		case <-time.After(time.Duration(200+rng.IntN(600)) * time.Millisecond):
		}
		if !settledAt.IsZero() && time.Since(settledAt) > 3*time.Second {
			break
		}
		scs[rng.IntN(replicas)].restart()
		kills++
	}
	t.Logf("%d SIGKILLs and restarts across %d replicas", kills, replicas)

	// Every payment's final event reaches the application.
	waitFor(t, 90*time.Second, "every final event delivered", func() (bool, string) {
		got := map[string]bool{}
		for _, r := range hook.received() {
			if r.Event.Data.Payment != nil {
				got[r.Event.Data.Payment.ID] = true
			}
		}
		missing := 0
		for id := range want {
			if !got[id] {
				missing++
			}
		}
		return missing == 0, fmt.Sprintf("%d of %d payments without a final event", missing, len(want))
	})
	recs := hook.received()
	bodies := map[string][]byte{}
	for _, r := range recs {
		if prev, ok := bodies[r.ID]; ok && !bytes.Equal(prev, r.Body) {
			t.Fatalf("webhook-id %s carried two different bodies:\n%s\n%s", r.ID, prev, r.Body)
		}
		bodies[r.ID] = r.Body
		p := r.Event.Data.Payment
		if p == nil {
			t.Fatalf("event %s without a payment", r.ID)
		}
		// Nothing unverified: each event says what the sandbox decided.
		if want[p.ID] != r.Event.Type {
			t.Fatalf("payment %s: delivered %s, the upstream settled it as %s", p.ID, r.Event.Type, want[p.ID])
		}
	}
	st := sb.Stats(t, sb.HuifuID)
	if st.Orders != crashPayments {
		t.Fatalf("the upstream got %d orders for %d payments", st.Orders, crashPayments)
	}
	t.Logf("%d notifications sent by the sandbox (%d acknowledged), %d deliveries for %d events",
		st.Notifications, st.Delivered, len(recs), len(bodies))
	if len(bodies) != crashPayments {
		t.Fatalf("%d distinct events for %d payments", len(bodies), crashPayments)
	}
}

func TestCrashSQLite(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	crashRun(t, 1, nil)
}

func TestCrashTwoReplicasPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	dsn := postgresSchema(t)
	crashRun(t, 2, []string{"PAYSIDECAR_STORE__DRIVER=postgres", "PAYSIDECAR_STORE__POSTGRES_DSN=" + dsn})
}

// postgresSchema creates a fresh schema on the test server, drops it when
// the test ends, and returns a DSN that uses it.
func postgresSchema(t *testing.T) string {
	base := os.Getenv("PAYSIDECAR_TEST_POSTGRES_DSN")
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("PostgreSQL is required in CI: %v", err)
		}
		t.Skipf("PostgreSQL unreachable: %v", err)
	}
	defer conn.Close(context.Background())
	schema := fmt.Sprintf("e2e_%d_%d", time.Now().UnixNano(), rand.IntN(1000))
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			return
		}
		defer c.Close(ctx)
		_, _ = c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
	})
	sep := "?"
	if bytes.ContainsRune([]byte(base), '?') {
		sep = "&"
	}
	return base + sep + "search_path=" + schema
}
