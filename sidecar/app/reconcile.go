package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paysidecar/paysidecar/sidecar/config"
	"github.com/paysidecar/paysidecar/sidecar/ledger"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
	"github.com/paysidecar/paysidecar/sidecar/reconcile"
	"github.com/paysidecar/paysidecar/sidecar/reconcile/sqlstore"
	"github.com/paysidecar/paysidecar/sidecar/statements"
	"github.com/paysidecar/paysidecar/sidecar/store"
)

// UpstreamClient returns a client of the configured upstream that signs
// with the configured merchant key (on a loopback upstream without keys,
// the sandbox's published development key), for commands that call the
// upstream without running the sidecar.
func UpstreamClient(cfg config.Config, log *slog.Logger) (*nkp.Client, error) {
	k, err := loadKeys(cfg, log)
	if err != nil {
		return nil, err
	}
	return &nkp.Client{
		BaseURL: cfg.Upstream.BaseURL, SysID: cfg.Upstream.SysID, ProductID: cfg.Upstream.ProductID,
		Profile: nkp.Profile(cfg.Profile), Key: k.merchant, UpstreamKey: k.upstream, HTTP: &http.Client{Timeout: cfg.Upstream.Timeout, Transport: nkp.NewTransport(cfg.Upstream.MaxIdleConns)},
	}, nil
}

// StatementArchive returns the archive of the configured merchant's
// statements, in reconcile.dir.
func StatementArchive(cfg config.Config, up statements.FileQuerier, log *slog.Logger) (*statements.Archive, error) {
	return statements.New(statements.Config{Dir: cfg.StatementsDir(), MerchantID: cfg.Upstream.MerchantID, Upstream: up, Logger: log})
}

// startReconcile opens the reconciliation's tables beside the store's,
// builds the reconciliation and starts its daily schedule. The returned
// function stops it and closes what it opened.
func startReconcile(ctx context.Context, cfg config.Config, up *nkp.Client, led *ledger.Ledger, st store.Store,
	published func(context.Context, store.Event), reg prometheus.Registerer, log *slog.Logger) (*reconcile.Service, func(), error) {
	dsn := cfg.Store.SQLitePath
	if cfg.Store.Driver == "postgres" {
		dsn = cfg.Store.PostgresDSN
	}
	books, err := sqlstore.Open(cfg.Store.Driver, dsn)
	if err != nil {
		return nil, nil, fmt.Errorf("reconciliation store: %w", err)
	}
	if err := books.Migrate(ctx, log); err != nil {
		_ = books.Close()
		return nil, nil, fmt.Errorf("reconciliation store: %w", err)
	}
	archive, err := StatementArchive(cfg, up, log)
	if err != nil {
		_ = books.Close()
		return nil, nil, err
	}
	metrics, err := reconcile.NewMetrics(reg)
	if err != nil {
		_ = books.Close()
		return nil, nil, err
	}
	deps := reconcile.Deps{Bills: archive, Ledger: books, Runs: books, Metrics: metrics, Logger: log}
	if cfg.Reconcile.Settle {
		deps.Settler = reconcile.QuerySettler{Upstream: up, Ledger: led}
	}
	if cfg.Webhook.Format == "json" {
		deps.Events = reconcile.OutboxEvents{Store: st, Published: published}
	} else {
		log.Warn("webhook.format is not json: reconciliation.completed events are not sent")
	}
	rec, err := reconcile.New(reconcile.Config{Slack: cfg.Reconcile.Slack, SortChunk: cfg.Reconcile.SortChunk}, deps)
	if err != nil {
		_ = books.Close()
		return nil, nil, err
	}
	svc, err := reconcile.NewService(reconcile.ServiceConfig{At: cfg.Reconcile.Schedule, RetryAfter: cfg.Reconcile.RetryAfter}, rec, archive, books)
	if err == nil {
		err = svc.Start(ctx)
	}
	if err != nil {
		_ = books.Close()
		return nil, nil, err
	}
	return svc, func() { _ = svc.Close(); _ = books.Close() }, nil
}
