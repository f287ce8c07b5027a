package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/paysidecar/paysidecar/internal/localproc"
	"github.com/paysidecar/paysidecar/sandbox"
	"github.com/paysidecar/paysidecar/sdk/client"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
)

// flowName is the flow every create uses: it needs no buyer.
const flowName = "alipay-native"

// sandboxProc is the sandbox upstream, a process of its own.
type sandboxProc struct {
	proc *localproc.Proc
	url  string
	keys sandbox.DevKeySet
}

func startSandbox(bin, dir string) (*sandboxProc, error) {
	keys, err := sandbox.DevKeys()
	if err != nil {
		return nil, err
	}
	addr := localproc.FreePort()
	// With a SQLite store configured, the sandbox command keeps its
	// ledger in a JSON file beside it, rewritten after every request: a
	// cost that grows with every order and would take a CPU from what is
	// measured. With the PostgreSQL driver it keeps none (the command
	// opens no store, so the DSN is never dialled).
	p, err := localproc.Start(filepath.Join(bin, "paysidecar"), []string{"sandbox"}, filepath.Join(dir, "sandbox.log"),
		"PAYSIDECAR_SANDBOX__LISTEN="+addr, "PAYSIDECAR_LOG__LEVEL=warn",
		"PAYSIDECAR_STORE__DRIVER=postgres", "PAYSIDECAR_STORE__POSTGRES_DSN=postgres://unused@127.0.0.1:1/unused")
	if err != nil {
		return nil, err
	}
	sb := &sandboxProc{proc: p, url: "http://" + addr, keys: keys}
	if err := p.WaitHTTP(sb.url+"/_sandbox/", 30*time.Second); err != nil {
		sb.stop()
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	return sb, nil
}

func (s *sandboxProc) stop() { s.proc.Stop() }

// direct returns the baseline client: the dev merchant's nkp.Client
// straight to the sandbox, keeping up to 128 idle connections.
func (s *sandboxProc) direct() *nkp.Client {
	return &nkp.Client{BaseURL: s.url, SysID: sandbox.DevSysID, ProductID: sandbox.DevProductID, Profile: nkp.ProfileNKP,
		Key: s.keys.Merchant.Private, UpstreamKey: s.keys.Upstream.Public, HTTP: keepAlive()}
}

// keepAlive is an HTTP client that keeps enough idle connections for the
// highest concurrency, as a well-configured application's would.
func keepAlive() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost = 256, 128
	return &http.Client{Transport: t, Timeout: 30 * time.Second}
}

// sidecarProc is a running sidecar with its plugins, its application (the
// webhook receiver) and the payments made through it.
type sidecarProc struct {
	proc   *localproc.Proc
	dir    string
	api    *client.Client
	notify string
	admin  string
	hook   *receiver
	hooks  *httptest.Server
	pool   *pool
	once   sync.Once
}

// storeSQLite is the environment of a sidecar on SQLite at path.
func storeSQLite(path string) []string {
	return []string{"PAYSIDECAR_STORE__DRIVER=sqlite", "PAYSIDECAR_STORE__SQLITE_PATH=" + path}
}

// startSidecar runs the sidecar against sb with the store of storeEnv and
// waits until it is ready.
func startSidecar(ctx context.Context, bin, dir string, sb *sandboxProc, storeEnv []string) (*sidecarProc, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	hook := newReceiver()
	hooks := httptest.NewServer(hook)
	// The upstream calls only ports 8000-9005.
	notify, err := localproc.FreePortIn(8000, 9005)
	if err != nil {
		return nil, err
	}
	api, admin := localproc.FreePort(), localproc.FreePort()
	env := append([]string{
		"PAYSIDECAR_UPSTREAM__BASE_URL=" + sb.url,
		"PAYSIDECAR_API__LISTEN=" + api, "PAYSIDECAR_ADMIN__LISTEN=" + admin,
		"PAYSIDECAR_NOTIFY__LISTEN=" + notify, "PAYSIDECAR_NOTIFY__PUBLIC_URL=http://" + notify + "/notify",
		"PAYSIDECAR_PLUGINS__DIR=" + filepath.Join(bin, "plugins"),
		"PAYSIDECAR_PLUGINS__WECHAT_JSAPI__SETTINGS__API_BASE=" + sb.url, "PAYSIDECAR_PLUGINS__WECHAT_JSAPI__SETTINGS__OAUTH_BASE=" + sb.url,
		"PAYSIDECAR_PLUGINS__WECHAT_MINIAPP__SETTINGS__API_BASE=" + sb.url,
		"PAYSIDECAR_WEBHOOK__URL=" + hooks.URL + "/hook", "PAYSIDECAR_WEBHOOK__SECRET=whsec_YmVuY2gtc2VjcmV0LWJlbmNoLXNlY3JldA==",
		// Reverse queries held off: the first would come an hour after
		// an order, long after the run.
		"PAYSIDECAR_REQUERY__SCHEDULE=1h", "PAYSIDECAR_REQUERY__CLOSE_EXPIRED=false",
		"PAYSIDECAR_RECONCILE__SCHEDULE=",
		// Every sender here is one source address, where the upstream
		// sends from several: the per-source limits would measure the
		// limiter, not the ingress.
		"PAYSIDECAR_NOTIFY__MAX_CONNS_PER_SOURCE=1024", "PAYSIDECAR_NOTIFY__RATE_PER_SOURCE=1000000",
		"PAYSIDECAR_NOTIFY__BURST_PER_SOURCE=1000000",
		"PAYSIDECAR_LOG__LEVEL=warn",
	}, storeEnv...)
	p, err := localproc.Start(filepath.Join(bin, "paysidecar"), []string{"run"}, filepath.Join(dir, "sidecar.log"), env...)
	if err != nil {
		hooks.Close()
		return nil, err
	}
	sc := &sidecarProc{proc: p, dir: dir, api: client.New("http://"+api, client.WithHTTPClient(keepAlive())),
		notify: "http://" + notify + "/notify", admin: "http://" + admin, hook: hook, hooks: hooks}
	sc.pool = &pool{sc: sc}
	if err := p.WaitHTTP(sc.admin+"/readyz", 60*time.Second); err != nil {
		sc.stop()
		return nil, fmt.Errorf("sidecar: %w (log: %s)", err, filepath.Join(dir, "sidecar.log"))
	}
	log.Printf("sidecar pid %d in %s", p.PID(), dir)
	return sc, nil
}

// stop ends the sidecar and its receiver; it may be called again.
func (s *sidecarProc) stop() {
	s.once.Do(func() {
		s.proc.Stop()
		s.hooks.Close()
	})
}

// pids returns the processes whose CPU is the sidecar's: the host and each
// of its children (the flow plugins), by name.
func (s *sidecarProc) pids() map[string]int {
	out := localproc.Children(s.proc.PID())
	out["host"] = s.proc.PID()
	return out
}

// order is the create request every create sends.
func order(seq int64) client.CreatePaymentRequest {
	return client.CreatePaymentRequest{Flow: client.FlowAlipayNative,
		OutTradeNo: fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), seq), AmountFen: 1, Description: "bench"}
}

// receiver is the application: it answers every webhook 204 and notes
// when each payment's payment.succeeded arrived.
type receiver struct {
	mu        sync.Mutex
	succeeded map[string]time.Time // by payment id
	changed   chan struct{}
}

func newReceiver() *receiver {
	return &receiver{succeeded: map[string]time.Time{}, changed: make(chan struct{}, 1)}
}

// ServeHTTP takes one webhook.
func (h *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	var e client.Event
	if err := json.Unmarshal(body, &e); err == nil && e.Type == "payment.succeeded" && e.Data.Payment != nil {
		at := time.Now()
		h.mu.Lock()
		if _, seen := h.succeeded[e.Data.Payment.ID]; !seen {
			h.succeeded[e.Data.Payment.ID] = at
		}
		h.mu.Unlock()
		select {
		case h.changed <- struct{}{}:
		default:
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// arrived returns when payment id's payment.succeeded arrived.
func (h *receiver) arrived(id string) (time.Time, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t, ok := h.succeeded[id]
	return t, ok
}

// waitAll waits until every one of ids has arrived, or timeout.
func (h *receiver) waitAll(ctx context.Context, ids []string, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		missing := 0
		h.mu.Lock()
		for _, id := range ids {
			if _, ok := h.succeeded[id]; !ok {
				missing++
			}
		}
		h.mu.Unlock()
		if missing == 0 {
			return nil
		}
		select {
		case <-h.changed:
		case <-time.After(100 * time.Millisecond):
		case <-deadline.C:
			return fmt.Errorf("%d of %d webhooks not delivered after %s", missing, len(ids), timeout)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
