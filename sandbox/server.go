package sandbox

import (
	"context"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/paysidecar/paysidecar/sidecar/nkp"
)

// Server is the sandbox upstream. It is safe for concurrent use; all of its
// state lives in the value.
type Server struct {
	cfg     Config
	log     *slog.Logger
	http    *http.Client
	mux     *http.ServeMux
	routes  map[string]apiHandler
	cashier *template.Template

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	apiSeq atomic.Uint64
	// signNext makes the sandbox sign with Config.NextUpstreamKey.
	signNext atomic.Bool

	mu      sync.Mutex
	closed  bool
	faults  Faults
	auto    AutoSettle
	release chan struct{} // closed to let held (reordered) notifications go
	l       ledger

	dirty  chan struct{} // a request may have changed the ledger
	saveMu sync.Mutex    // serializes writes of the state file
	saved  []byte        // what the state file holds
}

// New builds a Server from cfg, filling in defaults (see Config). logger may
// be nil. Call Close when done.
func New(cfg Config, logger *slog.Logger) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	hc := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	if cfg.HTTPClient != nil {
		c := *cfg.HTTPClient
		hc = &c
	}
	// The upstream follows no redirect: a 3xx answer is a failed attempt.
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	hc.Timeout = 0 // each attempt has its own deadline
	cashier, err := template.New("cashier").Parse(cashierPage)
	if err != nil {
		return nil, fmt.Errorf("sandbox: parse cashier page: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:     cfg,
		log:     logger,
		http:    hc,
		cashier: cashier,
		ctx:     ctx,
		cancel:  cancel,
		faults:  cfg.Faults,
		auto:    cfg.AutoSettle,
		release: make(chan struct{}),
		l:       newLedger(),
		dirty:   make(chan struct{}, 1),
	}
	loaded := false
	if cfg.StateFile != "" {
		if loaded, err = s.loadState(); err != nil {
			cancel()
			return nil, err
		}
	}
	if !loaded {
		s.seedDevMerchant()
	}
	s.routes = s.withRules(s.apiRoutes())
	s.mux = s.buildMux()
	if cfg.StateFile != "" {
		s.mu.Lock()
		if loaded {
			s.resumeLocked()
		}
		s.spawnLocked(s.keepState)
		s.mu.Unlock()
	}
	return s, nil
}

// resumeLocked schedules the auto-settlement of the loaded orders and
// refunds that are still processing, as when they were placed.
func (s *Server) resumeLocked() {
	for _, o := range s.l.orderList {
		if o.stat == nkp.StatProcessing {
			s.scheduleAutoPayLocked(o)
		}
	}
	for _, r := range s.l.refundList {
		if r.stat == nkp.StatProcessing {
			s.scheduleAutoRefundLocked(r)
		}
	}
}

// Handler returns the handler serving every endpoint: the API under /v2/,
// the WeChat emulation, the cashier, reconciliation downloads and the
// controls under /_sandbox/.
func (s *Server) Handler() http.Handler {
	h := s.recoverer(s.mux)
	if s.cfg.StateFile == "" {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		s.changed()
	})
}

// Close stops every notification and auto-settlement goroutine, waits for
// them and closes idle connections. Calls after the first do nothing.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	s.http.CloseIdleConnections()
	if s.cfg.StateFile != "" {
		return s.saveState()
	}
	return nil
}

// spawnLocked runs fn in a goroutine owned by s; callers hold s.mu. After
// Close it does nothing.
func (s *Server) spawnLocked(fn func(ctx context.Context)) {
	if s.closed {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn(s.ctx)
	}()
}

// sleep waits for d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// now is the sandbox's time in China Standard Time.
func (s *Server) now() time.Time { return s.cfg.Clock().In(cst()) }

// baseURL is the public base URL for links handed out in answers to r.
func (s *Server) baseURL(r *http.Request) string {
	if s.cfg.PublicURL != "" {
		return strings.TrimRight(s.cfg.PublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (s *Server) buildMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/v2/", s.serveAPI)
	mux.HandleFunc("GET /connect/oauth2/authorize", s.serveAuthorize)
	mux.HandleFunc("GET /sns/oauth2/access_token", s.serveAccessToken)
	mux.HandleFunc("GET /sns/jscode2session", s.serveJSCode2Session)
	s.wechatRoutes(mux)
	mux.HandleFunc("GET /qr/{token}", s.serveCashier)
	mux.HandleFunc("POST /qr/{token}", s.serveCashierAction)
	mux.HandleFunc("GET /bills/{huifu}/{bill}/{date}/{file}", s.serveBill)
	s.controlRoutes(mux)
	return mux
}

// recoverer turns a panic in a handler into an error answer, so that no
// input can take the server down or leave a client without an answer.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("sandbox handler panicked", "path", r.URL.Path, "panic", fmt.Sprint(v))
				if strings.HasPrefix(r.URL.Path, "/v2/") {
					s.writeAPI(w, http.StatusInternalServerError, errorData(errSystem("internal error"), nil), apiFault{})
					return
				}
				http.Error(w, "internal error", http.StatusInternalServerError)
			}
		}()
		next.ServeHTTP(w, r)
	})
}
