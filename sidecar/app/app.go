// Package app assembles the sidecar from its parts and runs it: it opens
// the store, launches the flow plugins, starts delivery and the reverse
// query, and serves the app API, the notification ingress and the admin
// endpoints until its context ends, then stops everything in reverse order.
package app

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"github.com/paysidecar/paysidecar/sandbox"
	"github.com/paysidecar/paysidecar/sdk/plugin"
	"github.com/paysidecar/paysidecar/sidecar/api"
	"github.com/paysidecar/paysidecar/sidecar/config"
	"github.com/paysidecar/paysidecar/sidecar/delivery"
	"github.com/paysidecar/paysidecar/sidecar/events"
	"github.com/paysidecar/paysidecar/sidecar/ledger"
	"github.com/paysidecar/paysidecar/sidecar/lifecycle"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
	"github.com/paysidecar/paysidecar/sidecar/notify"
	"github.com/paysidecar/paysidecar/sidecar/payments"
	"github.com/paysidecar/paysidecar/sidecar/pluginhost"
	"github.com/paysidecar/paysidecar/sidecar/reload"
	"github.com/paysidecar/paysidecar/sidecar/requery"
	"github.com/paysidecar/paysidecar/sidecar/store"
	"github.com/paysidecar/paysidecar/sidecar/store/postgres"
	"github.com/paysidecar/paysidecar/sidecar/store/sqlite"
	"github.com/paysidecar/paysidecar/sidecar/telemetry"
)

// Options configures Run.
type Options struct {
	// WithSandbox also runs the sandbox upstream in this process.
	WithSandbox bool
	// Version is reported in traces and logs.
	Version string
	// Stdout receives the start-up banner; Stderr the logs.
	Stdout io.Writer
	Stderr io.Writer
	// Ready, when not nil, is called once every listener is serving, with
	// their bound addresses (useful with port 0 in tests).
	Ready func(Addrs)
	// LoadConfig, when not nil, makes the configuration live: it reads
	// the configuration again as the caller read cfg (config.Load with the
	// same file and environment), whenever ConfigPath or a secret file
	// changes or a signal arrives on ReloadSignals, and the settings that
	// can change without a restart take effect (see package reload).
	LoadConfig func() (config.Config, error)
	// ConfigPath is the configuration file to watch; empty for none.
	ConfigPath string
	// ReloadSignals delivers the signals that ask for a reload (SIGHUP);
	// the caller registers and stops them.
	ReloadSignals <-chan os.Signal
}

// Addrs are the addresses the sidecar serves on.
type Addrs struct {
	API, Notify, Admin, Sandbox string
}

func (o *Options) defaults() {
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
}

// keys are the merchant's private key and the upstream's public keys.
type keys struct {
	merchant     *rsa.PrivateKey
	upstream     *rsa.PublicKey
	upstreamNext *rsa.PublicKey
	sandbox      bool
}

func loadKeys(cfg config.Config, log *slog.Logger) (keys, error) {
	var k keys
	var err error
	if cfg.Upstream.PrivateKey == "" || cfg.Upstream.PublicKey == "" {
		if !cfg.SandboxKeysAllowed() {
			return k, errors.New("upstream keys are required for a non-loopback upstream")
		}
		dev, err := sandbox.DevKeys()
		if err != nil {
			return k, fmt.Errorf("sandbox keys: %w", err)
		}
		log.Warn("using the sandbox's published development keys; configure upstream.private_key_file and upstream.public_key_file for a real upstream")
		k = keys{merchant: dev.Merchant.Private, upstream: &dev.Upstream.Private.PublicKey, sandbox: true}
	}
	if cfg.Upstream.PrivateKey != "" {
		if k.merchant, err = nkp.ParsePrivateKey(cfg.Upstream.PrivateKey); err != nil {
			return k, fmt.Errorf("upstream.private_key: %w", err)
		}
	}
	if cfg.Upstream.PublicKey != "" {
		if k.upstream, err = nkp.ParsePublicKey(cfg.Upstream.PublicKey); err != nil {
			return k, fmt.Errorf("upstream.public_key: %w", err)
		}
	}
	if cfg.Upstream.PublicKeyNext != "" {
		if k.upstreamNext, err = nkp.ParsePublicKey(cfg.Upstream.PublicKeyNext); err != nil {
			return k, fmt.Errorf("upstream.public_key_next: %w", err)
		}
	}
	log.Info("upstream public keys", "current", nkp.KeyID(k.upstream), "next", nkp.KeyID(k.upstreamNext))
	return k, nil
}

// openStore opens the configured store and applies its migrations.
func openStore(ctx context.Context, cfg config.StoreConfig) (store.Store, error) {
	switch cfg.Driver {
	case "postgres":
		return postgres.Open(ctx, cfg.PostgresDSN, postgres.WithMaxConns(cfg.PostgresMaxConns))
	default:
		// sqlite.Open creates the file's directory.
		return sqlite.Open(ctx, cfg.SQLitePath)
	}
}

// Run runs the sidecar until ctx ends or a listener fails. It validates
// cfg first (the checks config.Load makes) and starts nothing when it is
// not valid. Every part is a lifecycle.Component started in dependency
// order (tracing, sandbox, store, plugins, delivery, reverse query, then
// the listeners, last the configuration watcher when opts.LoadConfig is
// set) and closed in the reverse order, so the listeners stop taking
// requests and notifications before the parts behind them stop.
func Run(ctx context.Context, cfg config.Config, opts Options) (err error) {
	if err := cfg.Validate(); err != nil {
		return err
	}
	opts.defaults()
	level := new(slog.LevelVar)
	level.Set(telemetry.ParseLevel(cfg.Log.Level))
	log := telemetry.NewLeveledLogger(opts.Stderr, level, cfg.Log.Format)
	parts := lifecycle.NewGroup(log)
	defer func() { err = errors.Join(err, parts.Close()) }()
	failed := make(chan error, 4)

	tp, spans, shutdownTracing, err := telemetry.NewTracerProvider(ctx, telemetry.TracingOptions{
		Exporter: cfg.Tracing.Exporter, OTLPEndpoint: cfg.Tracing.OTLPEndpoint, SampleRatio: cfg.Tracing.SampleRatio, Version: opts.Version,
	})
	if err != nil {
		return err
	}
	if err := parts.Start(ctx, "tracing", lifecycle.Closer(func() error {
		return shutdownTracing(context.WithoutCancel(ctx))
	})); err != nil {
		return err
	}
	reg := telemetry.NewRegistry()
	tel := telemetry.Bundle{Logger: log, Registerer: reg, TracerProvider: tp}.WithDefaults()

	for _, h := range cfg.Hints {
		log.Warn(h)
	}
	k, err := loadKeys(cfg, log)
	if err != nil {
		return err
	}
	flowCfgs, skipped, err := flowConfigs(cfg.Plugins)
	if err != nil {
		return err
	}
	withMerchants(flowCfgs, cfg.Merchants)
	for _, name := range skipped {
		log.Warn("an executable in plugins.dir is not a flow plugin: its name is not a flow name", "file", name, "dir", cfg.Plugins.Dir)
	}
	hkeys, err := hostKeys(cfg, k)
	if err != nil {
		return err
	}

	var addrs Addrs
	if opts.WithSandbox {
		sb, err := startSandbox(ctx, cfg, log, parts, failed)
		if err != nil {
			return err
		}
		addrs.Sandbox = sb.Addr()
	}

	st, err := openStore(ctx, cfg.Store)
	if err != nil {
		return fmt.Errorf("open %s store: %w", cfg.Store.Driver, err)
	}
	if err := parts.Start(ctx, "store", lifecycle.Closer(st.Close)); err != nil {
		return err
	}
	// The store's committer metrics (batch sizes, commit and queue times).
	if c, ok := st.(prometheus.Collector); ok {
		if err := tel.Register(c); err != nil {
			return fmt.Errorf("store metrics: %w", err)
		}
	}

	// The call timeout is nkp.Client's (a context deadline), not the HTTP
	// client's: over the instrumented transport that would cost a
	// goroutine and a timer per call.
	upstreamHTTP := &http.Client{
		Transport: otelhttp.NewTransport(nkp.NewTransport(cfg.Upstream.MaxIdleConns), otelhttp.WithTracerProvider(tp)),
	}
	upstreamCalls, err := telemetry.NewUpstreamCalls(tel, append([]string{nkp.PathJSPay, nkp.PathPaymentQuery, nkp.PathClose,
		nkp.PathRefund, nkp.PathRefundQuery, nkp.PathFileQuery}, slices.Concat(nkp.MerchantPaths, cfg.Upstream.Passthrough)...))
	if err != nil {
		return err
	}
	up := &nkp.Client{
		BaseURL: cfg.Upstream.BaseURL, SysID: cfg.Upstream.SysID, ProductID: cfg.Upstream.ProductID,
		Profile: nkp.Profile(cfg.Profile), Key: k.merchant, UpstreamKey: k.upstream, UpstreamNextKey: k.upstreamNext,
		HTTP: upstreamHTTP, Timeout: cfg.Upstream.Timeout, Observe: upstreamCalls.Observe, Verified: answerKeyCounter(reg),
	}

	pluginOpts := []pluginhost.Option{
		pluginhost.WithTracerProvider(tp),
		pluginhost.WithEnvironment(environment(cfg, k.sandbox || opts.WithSandbox)),
		pluginhost.WithKeys(hkeys),
		pluginhost.WithHealthCheck(cfg.Plugins.HealthInterval, cfg.Plugins.HealthTimeout),
	}
	if cfg.Plugins.SocketDir != "" {
		pluginOpts = append(pluginOpts, pluginhost.WithSocketDir(cfg.Plugins.SocketDir))
	}
	if n := cfg.Plugins.GoMaxProcs; n > 0 {
		pluginOpts = append(pluginOpts, pluginhost.WithSetEnv("GOMAXPROCS="+strconv.Itoa(n)))
	}
	if spans != nil {
		// The plugins' spans are exported with the host's own.
		pluginOpts = append(pluginOpts, pluginhost.WithPluginSpans(spans))
	}
	if cfg.Tracing.Exporter == "otlp" {
		// A plugin that exports its spans itself (package otlpexport)
		// sends them to the same collector.
		pluginOpts = append(pluginOpts, pluginhost.WithSetEnv(plugin.EnvOTLPEndpoint+"=http://"+cfg.Tracing.OTLPEndpoint))
	}
	plugins, err := pluginhost.New(flowCfgs, log, reg, pluginOpts...)
	if err != nil {
		return err
	}
	if err := parts.Start(ctx, "plugins", plugins); err != nil {
		return err
	}
	if len(plugins.Infos()) == 0 {
		return errors.New("start plugins: every flow plugin was refused; see the log")
	}

	var disp *delivery.Dispatcher
	wake := func() {}
	published := func(context.Context, store.Event) {}
	if cfg.Webhook.URL != "" {
		disp, err = delivery.New(delivery.Config{
			URL: cfg.Webhook.URL, Secret: cfg.Webhook.Secret, Format: cfg.Webhook.Format, Profile: nkp.Profile(cfg.Profile),
			Timeout: cfg.Webhook.Timeout, Schedule: cfg.Webhook.Schedule, Concurrency: cfg.Webhook.Concurrency,
		}, st, delivery.Options{Telemetry: tel})
		if err != nil {
			return fmt.Errorf("webhook delivery: %w", err)
		}
		wake, published = disp.Wake, disp.Published
	} else {
		log.Warn("webhook.url is not set: events are kept in the outbox until it is")
	}
	led, err := ledger.New(st, ledger.Options{Telemetry: tel, Published: published})
	if err != nil {
		return err
	}
	if disp != nil {
		if err := parts.Start(ctx, "delivery", disp); err != nil {
			return err
		}
	}

	rq, err := requery.New(requery.Config{
		Schedule: cfg.Requery.Schedule, Grace: cfg.Requery.Grace, RefundMaxAge: cfg.Requery.RefundMaxAge,
		RefundSlowInterval: cfg.Requery.RefundSlowInterval,
		CloseExpired:       cfg.Requery.CloseExpired, PollInterval: cfg.Requery.Interval,
	}, st, led, up, requery.Options{Telemetry: tel})
	if err != nil {
		return err
	}
	if err := parts.Start(ctx, "requery", rq); err != nil {
		return err
	}

	ingress, err := notify.NewHandler(notify.Config{
		MaxBodyBytes: cfg.Notify.MaxBodyBytes, Profile: nkp.Profile(cfg.Profile), Verifier: k.upstream, NextVerifier: k.upstreamNext,
		Limits: notifyLimits(cfg.Notify),
	}, st, led, notify.Options{Telemetry: tel})
	if err != nil {
		return err
	}
	ev := events.New(st, events.Options{Telemetry: tel, Wake: wake})
	pay, err := payments.New(payments.Config{
		MerchantID: cfg.Upstream.MerchantID, NotifyURL: cfg.Notify.PublicURL, MaxAmountFen: cfg.API.MaxAmountFen,
		FirstQueryAfter: cfg.Requery.Schedule[0], InFlight: cfg.Upstream.Timeout + 5*time.Second,
		Merchants: slices.Collect(maps.Keys(cfg.Merchants)),
	}, payments.Deps{Store: st, Ledger: led, Upstream: up, Flows: plugins, Telemetry: tel})
	if err != nil {
		return err
	}
	books, closeBooks, err := startReconcile(ctx, cfg, up, led, st, published, reg, log)
	if err != nil {
		return err
	}
	if err := parts.Start(ctx, "reconcile", lifecycle.Closer(func() error { closeBooks(); return nil })); err != nil {
		return err
	}
	apiServer, err := api.New(api.Config{
		MerchantID: cfg.Upstream.MerchantID, MaxBodyBytes: cfg.API.MaxBodyBytes,
		IdempotencyTTL: cfg.API.IdempotencyTTL, Token: cfg.API.Token, Passthrough: cfg.Upstream.Passthrough,
	}, api.Deps{Store: st, Payments: pay, Upstream: up, Flows: plugins, Events: ev, Statements: books.Handler(), Telemetry: tel})
	if err != nil {
		return err
	}

	notifyMux := http.NewServeMux()
	notifyMux.Handle("/", ingress)
	var adminOpts []telemetry.AdminOption
	if cfg.Admin.Pprof {
		adminOpts = append(adminOpts, telemetry.WithPprof())
		log.Warn("admin.pprof is on: runtime profiles are served under /debug/pprof/ on the admin listener", "admin", cfg.Admin.Listen)
	}
	admin := telemetry.AdminHandler(reg, []telemetry.Check{
		{Name: "store", Func: st.Ping},
		{Name: "plugins", Func: func(context.Context) error {
			if !plugins.Ready() {
				return errors.New("a flow plugin is not running")
			}
			return nil
		}},
	}, adminOpts...)
	// The notify port faces the internet: its listener and server carry
	// the ingress's connection and header limits.
	notifyFront := func(ln *net.Listener, srv *http.Server) { *ln = ingress.Listener(*ln); ingress.ConfigureServer(srv) }
	for _, l := range []struct {
		name, listen string
		h            http.Handler
		addr         *string
		opts         []serveOption
	}{
		{"api", cfg.API.Listen, apiServer.Handler(), &addrs.API, nil},
		{"notify", cfg.Notify.Listen, notifyMux, &addrs.Notify, []serveOption{notifyFront}},
		{"admin", cfg.Admin.Listen, admin, &addrs.Admin, nil},
	} {
		srv := newServer(l.name, l.listen, l.h, log, failed, l.opts...)
		if err := parts.Start(ctx, l.name+" listener", srv); err != nil {
			return err
		}
		*l.addr = srv.Addr()
	}
	if opts.LoadConfig != nil {
		w, err := reload.New(cfg, liveParts(cfg, live{
			level: level, api: apiServer, upstreamCalls: upstreamCalls, delivery: disp, requery: rq, payments: pay, plugins: plugins,
		}), reload.Options{Path: opts.ConfigPath, Load: opts.LoadConfig, Signals: opts.ReloadSignals, Telemetry: tel})
		if err != nil {
			return err
		}
		if err := parts.Start(ctx, "configuration watcher", w); err != nil {
			return err
		}
	}
	log.Info("paysidecar is running", "api", addrs.API, "notify", addrs.Notify, "admin", addrs.Admin,
		"upstream", cfg.Upstream.BaseURL, "store", cfg.Store.Driver, "version", opts.Version)
	if opts.WithSandbox {
		printBanner(opts.Stdout, addrs, plugins.Infos())
	}
	if opts.Ready != nil {
		opts.Ready(addrs)
	}
	select {
	case <-ctx.Done():
	case err := <-failed:
		return err
	}
	log.Info("shutting down")
	return nil
}

// RunSandbox runs the sandbox upstream alone until ctx ends.
func RunSandbox(ctx context.Context, cfg config.Config, opts Options) (err error) {
	opts.defaults()
	log := telemetry.NewLogger(opts.Stderr, cfg.Log.Level, cfg.Log.Format)
	parts := lifecycle.NewGroup(log)
	defer func() { err = errors.Join(err, parts.Close()) }()
	failed := make(chan error, 1)
	sb, err := startSandbox(ctx, cfg, log, parts, failed)
	if err != nil {
		return err
	}
	fmt.Fprintf(opts.Stdout, "sandbox upstream on http://%s (controls under /_sandbox/)\n", sb.Addr())
	select {
	case <-ctx.Done():
		return nil
	case err := <-failed:
		return err
	}
}

// startSandbox runs the sandbox upstream in this process, as two parts of
// the group: the sandbox itself and its listener.
func startSandbox(ctx context.Context, cfg config.Config, log *slog.Logger, parts *lifecycle.Group, failed chan<- error) (*server, error) {
	sc := sandbox.Config{
		Profile:         nkp.Profile(cfg.Profile),
		Seed:            cfg.Sandbox.Seed,
		StrictNotifyURL: true,
	}
	if cfg.Store.Driver == "sqlite" {
		// The sandbox's orders live as long as the sidecar's: a restart
		// keeps both, and removing the directory forgets both.
		sc.StateFile = filepath.Join(filepath.Dir(cfg.Store.SQLitePath), "sandbox.json")
	}
	if cfg.Sandbox.AutoSettle > 0 {
		sc.AutoSettle = sandbox.AutoSettle{Pay: true, PayAfterMS: cfg.Sandbox.AutoSettle.Milliseconds(), Refund: true, RefundAfterMS: cfg.Sandbox.AutoSettle.Milliseconds()}
	}
	if cfg.Upstream.PublicKey == "" {
		// The sidecar signs with the sandbox's dev merchant key; let the
		// configured sys_id use it.
		dev, err := sandbox.DevKeys()
		if err != nil {
			return nil, err
		}
		sc.Merchants = map[string]*rsa.PublicKey{cfg.Upstream.SysID: &dev.Merchant.Private.PublicKey}
	}
	sb, err := sandbox.New(sc, log.With("component", "sandbox"))
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	if err := parts.Start(ctx, "sandbox", lifecycle.Closer(sb.Close)); err != nil {
		return nil, err
	}
	srv := newServer("sandbox", cfg.Sandbox.Listen, sb.Handler(), log, failed)
	if err := parts.Start(ctx, "sandbox listener", srv); err != nil {
		return nil, err
	}
	return srv, nil
}

// printBanner prints where everything runs and a curl that creates a
// payment with one of the running flows: the first, by name, that needs no
// buyer, so that the command works as printed.
func printBanner(w io.Writer, a Addrs, flows []plugin.Info) {
	fmt.Fprintf(w, `
paysidecar is running against the sandbox upstream.

  app API        http://%[1]s
  notify         http://%[2]s/notify
  metrics        http://%[3]s/metrics
  sandbox        http://%[4]s
  flows          http://%[1]s/v1/flows
`, a.API, a.Notify, a.Admin, a.Sandbox)
	slices.SortFunc(flows, func(x, y plugin.Info) int { return strings.Compare(x.Name, y.Name) })
	for _, f := range flows {
		if f.Buyer == plugin.BuyerRequired {
			continue
		}
		fmt.Fprintf(w, `
Create a payment with the %[2]s flow (trade type %[3]s):

  curl -s http://%[1]s/v1/payments -H 'Content-Type: application/json' \
    -d '{"flow":"%[2]s","out_trade_no":"demo-'"$(date +%%s)"'","amount_fen":1,"description":"demo"}'

Its pay_params are what the front end needs; a QR code URL in them opens
the sandbox's cashier, where the payment can be paid. Then
GET http://%[1]s/v1/payments/<id> to see it succeed.

`, a.API, f.Name, f.TradeType)
		return
	}
	fmt.Fprintf(w, "\nEvery running flow needs a buyer: see GET http://%s/v1/flows.\n\n", a.API)
}

// server is one HTTP listener of the process, as a lifecycle.Component:
// Start listens and serves in a goroutine it owns, Close stops taking
// connections and lets requests in flight finish for up to ten seconds.
type server struct {
	name, listen string
	srv          *http.Server
	opts         []serveOption
	failed       chan<- error
	addr         string
	done         chan struct{}
}

func newServer(name, listen string, h http.Handler, log *slog.Logger, failed chan<- error, opts ...serveOption) *server {
	return &server{
		name: name, listen: listen, failed: failed, opts: opts,
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      60 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
	}
}

// answerKeyCounter counts the upstream's answers by the key that verified
// them, so that a key switch-over can be watched.
func answerKeyCounter(reg prometheus.Registerer) func(string) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "paysidecar_upstream_answers_verified_total",
		Help: "Upstream answers whose signature verified, by the upstream key that verified it (current, next).",
	}, []string{"key"})
	reg.MustRegister(c)
	return func(key string) { c.WithLabelValues(key).Inc() }
}

// notifyLimits are the notify port's limits from the configuration.
func notifyLimits(c config.NotifyConfig) notify.Limits {
	return notify.Limits{
		MaxHeaderBytes: c.MaxHeaderBytes, ReadTimeout: c.ReadTimeout, MaxConns: c.MaxConns, MaxConnsPerSource: c.MaxConnsPerSource,
		RatePerSource: c.RatePerSource, BurstPerSource: c.BurstPerSource, Sources: c.Sources, RateLimitDelay: c.RateLimitDelay,
		Concurrency: c.Concurrency, StoreConcurrency: c.StoreConcurrency,
		QueueTimeout: c.QueueTimeout, DuplicateCache: c.DuplicateCache, DuplicateRate: c.DuplicateRate, DuplicateBurst: c.DuplicateBurst, LogRefusals: c.LogRefusals, LogInterval: c.LogInterval,
	}
}

// serveOption adjusts a listener and its server before serving, e.g. to
// apply limits.
type serveOption func(ln *net.Listener, srv *http.Server)

// Start implements lifecycle.Component.
func (s *server) Start(context.Context) error {
	ln, err := net.Listen("tcp", s.listen)
	if err != nil {
		return fmt.Errorf("%s: listen on %s: %w", s.name, s.listen, err)
	}
	for _, o := range s.opts {
		o(&ln, s.srv)
	}
	s.addr = ln.Addr().String()
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			select {
			case s.failed <- fmt.Errorf("%s server: %w", s.name, err):
			default:
			}
		}
	}()
	return nil
}

// Addr returns the bound address once started (useful with port 0).
func (s *server) Addr() string { return s.addr }

// DrainTimeout is how long the servers let requests in flight finish at
// shutdown, before delivery, the reverse query and the plugins stop.
const DrainTimeout = 10 * time.Second

// Close implements lifecycle.Component.
func (s *server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), DrainTimeout)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	<-s.done
	return err
}
