// Command demo-app is a small merchant application that shows how an H5 shop
// uses paysidecar. It serves a page where a buyer picks a payment flow and an
// amount; its back end creates the payment through the sidecar's app API
// (with sdk/client) and hands the page the pay parameters, which the page
// passes to WeixinJSBridge, wx.requestPayment or the Alipay deep link. The
// sidecar's webhook arrives at /webhook, is verified (Standard Webhooks,
// constant-time) and marks the order paid; the page polls the order and
// shows it. The page starts payments with sdk/js's paysidecar-pay.mjs.
//
// Usage:
//
//	DEMO_WEBHOOK_SECRET=whsec_... demo-app -sidecar http://127.0.0.1:8080 -listen 127.0.0.1:3000
package main

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/paysidecar/paysidecar/sdk/client"
	"github.com/paysidecar/paysidecar/sdk/js"
	"github.com/paysidecar/paysidecar/sidecar/delivery"
)

//go:embed static
var staticFiles embed.FS

// Limits of the demo.
const (
	maxOrders      = 10000
	maxAmountFen   = 100000 // 1,000 yuan
	maxWebhookBody = 1 << 20
	sidecarTimeout = 20 * time.Second
)

// Order states the page shows.
const (
	orderUnpaid   = "unpaid"
	orderPaid     = "paid"
	orderFailed   = "failed"
	orderClosed   = "closed"
	orderRefunded = "refunded"
)

// order is the demo shop's own record of an order.
type order struct {
	OutTradeNo string   `json:"out_trade_no"`
	PaymentID  string   `json:"payment_id"`
	Flow       string   `json:"flow"`
	AmountFen  int64    `json:"amount_fen"`
	Status     string   `json:"status"`
	Events     []string `json:"events"`
}

// app is the demo merchant application.
type app struct {
	sidecar *client.Client
	secret  string
	log     *slog.Logger
	now     func() time.Time
	// wechatBridge is the URL of a stand-in WeixinJSBridge script that the
	// page loads, for the sandbox and tests only; empty in production.
	wechatBridge string

	mu     sync.Mutex
	orders map[string]*order // by out_trade_no
	seen   map[string]bool   // webhook event ids already handled
}

// newApp returns the application calling the sidecar through c and
// verifying webhooks with secret.
func newApp(c *client.Client, secret string, log *slog.Logger) *app {
	return &app{sidecar: c, secret: secret, log: log, now: time.Now, orders: map[string]*order{}, seen: map[string]bool{}}
}

// handler returns the application's routes.
func (a *app) handler() http.Handler {
	static, err := fs.Sub(staticFiles, "static")
	if err != nil {
		panic(err) // the embedded directory is fixed at build time
	}
	index := template.Must(template.ParseFS(static, "index.html"))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := index.Execute(w, struct{ WeChatBridge string }{a.wechatBridge}); err != nil {
			a.log.Error("render the page", "err", err)
		}
	})
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.Handle("GET /js/", http.StripPrefix("/js/", js.Handler()))
	mux.HandleFunc("POST /api/orders", a.createOrder)
	mux.HandleFunc("GET /api/orders/{out_trade_no}", a.getOrder)
	mux.HandleFunc("POST /api/wechat-login", a.wechatLogin)
	mux.HandleFunc("POST /webhook", a.webhook)
	return mux
}

// orderRequest is what the page posts to create an order.
type orderRequest struct {
	Flow      string `json:"flow"`
	AmountFen int64  `json:"amount_fen"`
	OpenID    string `json:"openid"`
	Code      string `json:"code"`
}

func (a *app) createOrder(w http.ResponseWriter, r *http.Request) {
	var req orderRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_json", "send a JSON object")
		return
	}
	switch req.Flow {
	case client.FlowWeChatJSAPI, client.FlowWeChatMiniApp, client.FlowAlipayNative:
	default:
		writeError(w, http.StatusBadRequest, "unknown_flow", "choose wechat-jsapi, wechat-miniapp or alipay-native")
		return
	}
	if req.AmountFen < 1 || req.AmountFen > maxAmountFen {
		writeError(w, http.StatusBadRequest, "amount_invalid", fmt.Sprintf("the amount must be 1 to %d fen", maxAmountFen))
		return
	}
	a.mu.Lock()
	full := len(a.orders) >= maxOrders
	a.mu.Unlock()
	if full {
		writeError(w, http.StatusServiceUnavailable, "too_many_orders", "the demo keeps at most 10000 orders; restart it")
		return
	}
	outTradeNo, err := newOrderNumber(a.now())
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "cannot make an order number")
		return
	}
	pr := client.CreatePaymentRequest{
		Flow: req.Flow, OutTradeNo: outTradeNo, AmountFen: req.AmountFen, Description: "paysidecar demo order",
		ClientIP: clientIP(r), Metadata: map[string]string{"source": "demo-app"},
	}
	if req.OpenID != "" || req.Code != "" {
		pr.Buyer = &client.Buyer{OpenID: req.OpenID, Code: req.Code}
	}
	ctx, cancel := context.WithTimeout(r.Context(), sidecarTimeout)
	defer cancel()
	// The order number doubles as the idempotency key: a retried request
	// can never place a second order.
	p, err := a.sidecar.CreatePayment(ctx, pr, client.IdempotencyKey(outTradeNo))
	if err != nil {
		var apiErr *client.APIError
		if errors.As(err, &apiErr) {
			status := apiErr.StatusCode
			if status >= 500 {
				status = http.StatusBadGateway
			}
			writeError(w, status, apiErr.Code, apiErr.Message)
			return
		}
		a.log.WarnContext(r.Context(), "create payment", "out_trade_no", outTradeNo, "err", err)
		writeError(w, http.StatusBadGateway, "sidecar_unreachable", "the payment sidecar did not answer")
		return
	}
	o := &order{OutTradeNo: outTradeNo, PaymentID: p.ID, Flow: req.Flow, AmountFen: req.AmountFen, Status: orderUnpaid, Events: []string{}}
	a.mu.Lock()
	a.orders[outTradeNo] = o
	a.mu.Unlock()
	a.log.InfoContext(r.Context(), "order created", "out_trade_no", outTradeNo, "payment", p.ID, "flow", req.Flow)
	writeJSON(w, http.StatusCreated, map[string]any{"order": o, "payment": p})
}

func (a *app) getOrder(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	o, ok := a.orders[r.PathValue("out_trade_no")]
	var snapshot order
	if ok {
		snapshot = *o
		snapshot.Events = append([]string{}, o.Events...)
	}
	a.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "no such order")
		return
	}
	writeJSON(w, http.StatusOK, snapshot)
}

// wechatLogin asks the sidecar for the WeChat OAuth URL that brings the
// buyer back to the page with a code, which then pays with buyer.code.
func (a *app) wechatLogin(w http.ResponseWriter, r *http.Request) {
	var req struct {
		RedirectURI string `json:"redirect_uri"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil || req.RedirectURI == "" {
		writeError(w, http.StatusBadRequest, "invalid_json", "send {\"redirect_uri\": \"...\"}")
		return
	}
	// Only back to this shop: the OAuth code must not be handed elsewhere.
	if u, err := url.Parse(req.RedirectURI); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host != r.Host {
		writeError(w, http.StatusBadRequest, "invalid_field", "redirect_uri must be an http(s) URL of this shop")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), sidecarTimeout)
	defer cancel()
	var out struct {
		URL string `json:"url"`
	}
	in := map[string]string{"flow": client.FlowWeChatJSAPI, "redirect_uri": req.RedirectURI, "scope": "snsapi_base", "state": "demo"}
	if err := a.sidecar.Do(ctx, http.MethodPost, "/v1/oauth/authorize-url", in, &out); err != nil {
		var apiErr *client.APIError
		if errors.As(err, &apiErr) {
			writeError(w, http.StatusBadGateway, apiErr.Code, apiErr.Message)
			return
		}
		writeError(w, http.StatusBadGateway, "sidecar_unreachable", "the payment sidecar did not answer")
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// webhook receives the sidecar's events. It refuses anything whose
// Standard Webhooks signature does not verify, handles each event id once,
// and answers 204 so the sidecar stops retrying.
func (a *app) webhook(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxWebhookBody))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", "the webhook body is too large")
		return
	}
	if err := delivery.Verify(a.secret, r.Header, body, delivery.DefaultTolerance); err != nil {
		// The error never contains the secret.
		a.log.WarnContext(r.Context(), "webhook refused", "err", err, "webhook_id", r.Header.Get(delivery.HeaderID))
		writeError(w, http.StatusUnauthorized, "bad_signature", "the webhook signature does not verify")
		return
	}
	var ev client.Event
	if err := json.Unmarshal(body, &ev); err != nil || ev.ID == "" {
		writeError(w, http.StatusBadRequest, "invalid_json", "the event is not valid JSON")
		return
	}
	a.apply(ev)
	a.log.InfoContext(r.Context(), "webhook received", "event", ev.ID, "type", ev.Type)
	w.WriteHeader(http.StatusNoContent)
}

// apply records a verified event on its order, once per event id.
func (a *app) apply(ev client.Event) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.seen[ev.ID] {
		return
	}
	var outTradeNo string
	switch {
	case ev.Data.Payment != nil:
		outTradeNo = ev.Data.Payment.OutTradeNo
	case ev.Data.Refund != nil:
		for _, o := range a.orders {
			if o.PaymentID == ev.Data.Refund.PaymentID {
				outTradeNo = o.OutTradeNo
			}
		}
	}
	o, ok := a.orders[outTradeNo]
	if !ok {
		// An order this demo did not create (e.g. one made with curl). It
		// is acknowledged all the same, or the sidecar would keep trying.
		return
	}
	a.seen[ev.ID] = true
	o.Events = append(o.Events, ev.Type)
	switch ev.Type {
	case client.EventPaymentSucceeded:
		o.Status = orderPaid
	case client.EventPaymentFailed:
		o.Status = orderFailed
	case client.EventPaymentClosed:
		o.Status = orderClosed
	case client.EventRefundSucceeded:
		o.Status = orderRefunded
	}
}

// newOrderNumber returns a fresh out_trade_no such as
// DEMO-20250101120000-a1b2c3d4.
func newOrderNumber(now time.Time) (string, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random order number: %w", err)
	}
	return "DEMO-" + now.Format("20060102150405") + "-" + hex.EncodeToString(b[:]), nil
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil || net.ParseIP(host) == nil {
		return ""
	}
	return host
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, client.ErrorBody{Error: client.ErrorDetail{Code: code, Message: message}})
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo-app:", err)
		os.Exit(1)
	}
}

func run() error {
	sidecarURL := flag.String("sidecar", envOr("DEMO_SIDECAR_URL", "http://127.0.0.1:8080"), "base URL of the sidecar's app API (env DEMO_SIDECAR_URL)")
	listen := flag.String("listen", envOr("DEMO_LISTEN", "127.0.0.1:3000"), "address to serve the page and /webhook on (env DEMO_LISTEN)")
	secret := flag.String("webhook-secret", os.Getenv("DEMO_WEBHOOK_SECRET"), "the sidecar's webhook.secret, whsec_ + base64; prefer env DEMO_WEBHOOK_SECRET")
	token := flag.String("sidecar-token", os.Getenv("DEMO_SIDECAR_TOKEN"), "bearer token when the sidecar's api.token is set (env DEMO_SIDECAR_TOKEN)")
	bridge := flag.String("sandbox-wechat-bridge", os.Getenv("DEMO_SANDBOX_WECHAT_BRIDGE"), "sandbox only: URL of the sandbox's stand-in WeixinJSBridge script (/wechat/jsbridge.js) for the page to load (env DEMO_SANDBOX_WECHAT_BRIDGE)")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if _, err := delivery.ParseSecret(*secret); err != nil {
		return fmt.Errorf("-webhook-secret (or DEMO_WEBHOOK_SECRET) must be the sidecar's webhook.secret: %w", err)
	}
	c := client.New(*sidecarURL, client.WithToken(*token), client.WithHTTPClient(&http.Client{Timeout: sidecarTimeout}))
	a := newApp(c, *secret, log)
	if *bridge != "" {
		if u, err := url.Parse(*bridge); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("-sandbox-wechat-bridge must be an http(s) URL")
		}
		a.wechatBridge = *bridge
	}

	srv := &http.Server{
		Addr:              *listen,
		Handler:           a.handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *listen, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("demo shop ready", "page", "http://"+ln.Addr().String()+"/", "webhook", "http://"+ln.Addr().String()+"/webhook", "sidecar", strings.TrimRight(*sidecarURL, "/"))
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	<-errc
	return nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
