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
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
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
	"github.com/paysidecar/paysidecar/sidecar/nkp"
	"github.com/paysidecar/paysidecar/sidecar/notify"
	"github.com/paysidecar/paysidecar/sidecar/pluginhost"
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
		return postgres.Open(ctx, cfg.PostgresDSN)
	default:
		// sqlite.Open creates the file's directory.
		return sqlite.Open(ctx, cfg.SQLitePath)
	}
}

// pluginConfigs turns the flow settings into plugin launch configurations.
// Against the sandbox, WeChat app secrets default to the sandbox's own.
func pluginConfigs(cfg config.Config, sandboxKeys bool) []pluginhost.PluginConfig {
	var out []pluginhost.PluginConfig
	for _, name := range []string{config.FlowWeChatJSAPI, config.FlowWeChatMiniApp, config.FlowAlipayNative} {
		f := cfg.Plugins.Flows()[name]
		if !f.Enabled {
			continue
		}
		path := f.Path
		if path == "" {
			path = filepath.Join(cfg.Plugins.Dir, name)
		}
		settings := map[string]string{}
		for k, v := range f.Settings {
			settings[k] = v
		}
		if sandboxKeys && settings["app_secret"] == "" {
			switch name {
			case config.FlowWeChatJSAPI:
				settings["app_secret"] = sandbox.DevWeChatSecret
			case config.FlowWeChatMiniApp:
				settings["app_secret"] = sandbox.DevMiniAppSecret
			}
		}
		out = append(out, pluginhost.PluginConfig{Name: name, Path: path, SHA256: f.SHA256, Settings: settings})
	}
	return out
}

// Run runs the sidecar until ctx ends.
func Run(ctx context.Context, cfg config.Config, opts Options) error {
	opts.defaults()
	log := telemetry.NewLogger(opts.Stderr, cfg.Log.Level, cfg.Log.Format)
	tp, shutdownTracing, err := telemetry.NewTracerProvider(ctx, telemetry.TracingOptions{
		Exporter: cfg.Tracing.Exporter, OTLPEndpoint: cfg.Tracing.OTLPEndpoint, SampleRatio: cfg.Tracing.SampleRatio, Version: opts.Version,
	})
	if err != nil {
		return err
	}
	defer func() { _ = shutdownTracing(context.WithoutCancel(ctx)) }()
	reg := telemetry.NewRegistry()

	k, err := loadKeys(cfg, log)
	if err != nil {
		return err
	}
	var servers serverSet
	defer servers.shutdown(log)

	var sb *sandbox.Server
	if opts.WithSandbox {
		sb, err = startSandbox(cfg, log, &servers)
		if err != nil {
			return err
		}
		defer func() { _ = sb.Close() }()
	}

	st, err := openStore(ctx, cfg.Store)
	if err != nil {
		return fmt.Errorf("open %s store: %w", cfg.Store.Driver, err)
	}
	defer func() { _ = st.Close() }()

	upstreamHTTP := &http.Client{
		Timeout:   cfg.Upstream.Timeout,
		Transport: otelhttp.NewTransport(http.DefaultTransport, otelhttp.WithTracerProvider(tp)),
	}
	up := &nkp.Client{
		BaseURL: cfg.Upstream.BaseURL, SysID: cfg.Upstream.SysID, ProductID: cfg.Upstream.ProductID,
		Profile: nkp.Profile(cfg.Profile), Key: k.merchant, UpstreamKey: k.upstream, UpstreamNextKey: k.upstreamNext,
		HTTP: upstreamHTTP, Verified: answerKeyCounter(reg),
	}

	pluginOpts := []pluginhost.Option{pluginhost.WithTracerProvider(tp)}
	if cfg.Tracing.Exporter == "otlp" {
		// The plugins export their own spans to the same collector.
		pluginOpts = append(pluginOpts, pluginhost.WithSetEnv(plugin.EnvOTLPEndpoint+"=http://"+cfg.Tracing.OTLPEndpoint))
	}
	plugins, err := pluginhost.New(pluginConfigs(cfg, k.sandbox), log, reg, pluginOpts...)
	if err != nil {
		return err
	}
	if err := plugins.Start(ctx); err != nil {
		return fmt.Errorf("start plugins: %w", err)
	}
	defer func() { _ = plugins.Close() }()

	var disp *delivery.Dispatcher
	wake := func() {}
	published := func(context.Context, store.Event) {}
	if cfg.Webhook.URL != "" {
		disp, err = delivery.New(delivery.Config{
			URL: cfg.Webhook.URL, Secret: cfg.Webhook.Secret, Format: cfg.Webhook.Format, Profile: nkp.Profile(cfg.Profile),
			Timeout: cfg.Webhook.Timeout, Schedule: cfg.Webhook.Schedule, Concurrency: cfg.Webhook.Concurrency,
		}, st, delivery.Options{Logger: log, Registerer: reg, TracerProvider: tp})
		if err != nil {
			return fmt.Errorf("webhook delivery: %w", err)
		}
		wake, published = disp.Wake, disp.Published
	} else {
		log.Warn("webhook.url is not set: events are kept in the outbox until it is")
	}
	led, err := ledger.New(st, ledger.Options{Published: published, Logger: log, Registerer: reg})
	if err != nil {
		return err
	}
	if disp != nil {
		if err := disp.Start(ctx); err != nil {
			return fmt.Errorf("start delivery: %w", err)
		}
		defer func() { _ = disp.Close() }()
	}

	rq, err := requery.New(requery.Config{
		Schedule: cfg.Requery.Schedule, Grace: cfg.Requery.Grace, RefundMaxAge: cfg.Requery.RefundMaxAge,
		CloseExpired: cfg.Requery.CloseExpired, PollInterval: cfg.Requery.Interval,
	}, st, led, up, requery.Options{Logger: log, Registerer: reg, TracerProvider: tp})
	if err != nil {
		return err
	}
	if err := rq.Start(ctx); err != nil {
		return fmt.Errorf("start reverse query: %w", err)
	}
	defer func() { _ = rq.Close() }()

	ingress, err := notify.NewHandler(notify.Config{
		MaxBodyBytes: cfg.Notify.MaxBodyBytes, Profile: nkp.Profile(cfg.Profile), Verifier: k.upstream, NextVerifier: k.upstreamNext,
		Limits: notifyLimits(cfg.Notify),
	}, st, led, notify.Options{Logger: log, Registerer: reg, TracerProvider: tp})
	if err != nil {
		return err
	}
	ev, err := events.NewHandler(st, events.Options{Logger: log, Wake: wake})
	if err != nil {
		return err
	}
	apiServer, err := api.New(api.Config{
		MerchantID: cfg.Upstream.MerchantID, NotifyURL: cfg.Notify.PublicURL, MaxBodyBytes: cfg.API.MaxBodyBytes,
		MaxAmountFen: cfg.API.MaxAmountFen, IdempotencyTTL: cfg.API.IdempotencyTTL, Token: cfg.API.Token,
		Passthrough: cfg.Upstream.Passthrough, FirstQueryAfter: cfg.Requery.Schedule[0],
		InFlight: cfg.Upstream.Timeout + 5*time.Second,
	}, api.Deps{Store: st, Ledger: led, Upstream: up, Flows: plugins, Events: ev, Logger: log, TracerProvider: tp, Registerer: reg})
	if err != nil {
		return err
	}

	notifyMux := http.NewServeMux()
	notifyMux.Handle("/", ingress)
	admin := telemetry.AdminHandler(reg, []telemetry.Check{
		{Name: "store", Func: st.Ping},
		{Name: "plugins", Func: func(context.Context) error {
			if !plugins.Ready() {
				return errors.New("a flow plugin is not running")
			}
			return nil
		}},
	})
	var addrs Addrs
	if sb != nil {
		addrs.Sandbox = servers.addr("sandbox")
	}
	if addrs.API, err = servers.serve("api", cfg.API.Listen, apiServer.Handler(), log); err != nil {
		return err
	}
	if addrs.Notify, err = servers.serve("notify", cfg.Notify.Listen, notifyMux, log,
		func(ln *net.Listener, srv *http.Server) { *ln = ingress.Listener(*ln); ingress.ConfigureServer(srv) }); err != nil {
		return err
	}
	if addrs.Admin, err = servers.serve("admin", cfg.Admin.Listen, admin, log); err != nil {
		return err
	}
	log.Info("paysidecar is running", "api", addrs.API, "notify", addrs.Notify, "admin", addrs.Admin,
		"upstream", cfg.Upstream.BaseURL, "store", cfg.Store.Driver, "version", opts.Version)
	if opts.WithSandbox {
		printBanner(opts.Stdout, addrs)
	}
	if opts.Ready != nil {
		opts.Ready(addrs)
	}
	select {
	case <-ctx.Done():
	case err := <-servers.failed:
		return err
	}
	log.Info("shutting down")
	// Stop taking requests and notifications before the parts behind them
	// stop (the deferred calls above, in reverse order).
	servers.shutdown(log)
	return nil
}

// RunSandbox runs the sandbox upstream alone until ctx ends.
func RunSandbox(ctx context.Context, cfg config.Config, opts Options) error {
	opts.defaults()
	log := telemetry.NewLogger(opts.Stderr, cfg.Log.Level, cfg.Log.Format)
	var servers serverSet
	defer servers.shutdown(log)
	sb, err := startSandbox(cfg, log, &servers)
	if err != nil {
		return err
	}
	defer func() { _ = sb.Close() }()
	fmt.Fprintf(opts.Stdout, "sandbox upstream on http://%s (controls under /_sandbox/)\n", servers.addr("sandbox"))
	select {
	case <-ctx.Done():
		return nil
	case err := <-servers.failed:
		return err
	}
}

func startSandbox(cfg config.Config, log *slog.Logger, servers *serverSet) (*sandbox.Server, error) {
	sc := sandbox.Config{
		Profile:         nkp.Profile(cfg.Profile),
		Seed:            cfg.Sandbox.Seed,
		StrictNotifyURL: true,
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
	if _, err := servers.serve("sandbox", cfg.Sandbox.Listen, sb.Handler(), log); err != nil {
		_ = sb.Close()
		return nil, err
	}
	return sb, nil
}

func printBanner(w io.Writer, a Addrs) {
	fmt.Fprintf(w, `
paysidecar is running against the sandbox upstream.

  app API        http://%[1]s
  notify         http://%[2]s/notify
  metrics        http://%[3]s/metrics
  sandbox        http://%[4]s

Create a payment (Alipay native; the answer carries the cashier URL and deep link):

  curl -s http://%[1]s/v1/payments -H 'Content-Type: application/json' \
    -d '{"flow":"alipay-native","out_trade_no":"demo-'"$(date +%%s)"'","amount_fen":1,"description":"demo"}'

Then open pay_params.qr_code to pay in the sandbox's cashier, and
GET http://%[1]s/v1/payments/<id> to see it succeed.

`, a.API, a.Notify, a.Admin, a.Sandbox)
}

// serverSet owns the HTTP servers of the process.
type serverSet struct {
	once    sync.Once
	mu      sync.Mutex
	servers []*http.Server
	addrs   map[string]string
	wg      sync.WaitGroup
	failed  chan error
}

func (s *serverSet) addr(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addrs[name]
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
		Concurrency:  c.Concurrency,
		QueueTimeout: c.QueueTimeout, DuplicateCache: c.DuplicateCache, DuplicateRate: c.DuplicateRate, DuplicateBurst: c.DuplicateBurst, LogRefusals: c.LogRefusals, LogInterval: c.LogInterval,
	}
}

// serveOption adjusts a listener and its server before serving, e.g. to
// apply limits.
type serveOption func(ln *net.Listener, srv *http.Server)

// serve listens on addr and serves h until shutdown; it returns the bound
// address.
func (s *serverSet) serve(name, addr string, h http.Handler, log *slog.Logger, opts ...serveOption) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("%s: listen on %s: %w", name, addr, err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	for _, o := range opts {
		o(&ln, srv)
	}
	s.mu.Lock()
	if s.failed == nil {
		s.failed = make(chan error, 8)
		s.addrs = map[string]string{}
	}
	s.servers = append(s.servers, srv)
	s.addrs[name] = ln.Addr().String()
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.failed <- fmt.Errorf("%s server: %w", name, err)
		}
	}()
	return ln.Addr().String(), nil
}

// shutdown stops every server, letting requests in flight finish for up to
// ten seconds.
func (s *serverSet) shutdown(log *slog.Logger) {
	s.once.Do(func() { s.shutdownOnce(log) })
}

func (s *serverSet) shutdownOnce(log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s.mu.Lock()
	servers := s.servers
	s.mu.Unlock()
	for i := len(servers) - 1; i >= 0; i-- {
		if err := servers[i].Shutdown(ctx); err != nil {
			log.Warn("server shutdown", "err", err)
		}
	}
	s.wg.Wait()
}
