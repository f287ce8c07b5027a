package config

import (
	"errors"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func noEnv() []string { return nil }

func TestDefaultsAreValid(t *testing.T) {
	cfg, err := Load("", noEnv)
	if err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	if !cfg.SandboxKeysAllowed() {
		t.Fatalf("defaults point at %s, which should be the loopback sandbox", cfg.Upstream.BaseURL)
	}
	if cfg.Store.Driver != "sqlite" || len(cfg.Plugins.Flows()) != 3 {
		t.Fatalf("defaults: store %q, %d flows", cfg.Store.Driver, len(cfg.Plugins.Flows()))
	}
}

func TestExampleFileLoads(t *testing.T) {
	cfg, err := Load(filepath.Join("..", "..", "config.example.yaml"), noEnv)
	if err != nil {
		t.Fatalf("config.example.yaml: %v", err)
	}
	if cfg.API.Listen == "" {
		t.Fatal("example has no api.listen")
	}
}

func TestEnvironmentOverrides(t *testing.T) {
	cfg, err := Load("", func() []string {
		return []string{
			"PAYSIDECAR_UPSTREAM__SYS_ID=6666000123",
			"PAYSIDECAR_WEBHOOK__SCHEDULE=1s,2s,3s",
			"PAYSIDECAR_PLUGINS__WECHAT_JSAPI__SETTINGS__APP_ID=wx123",
			"PAYSIDECAR_API__MAX_AMOUNT_FEN=500",
			"OTHER_VAR=ignored",
			"PAYSIDECAR_CONFIG=/etc/paysidecar/config.yaml", // names the file, not a setting
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Upstream.SysID != "6666000123" {
		t.Errorf("sys_id = %q", cfg.Upstream.SysID)
	}
	if want := []time.Duration{time.Second, 2 * time.Second, 3 * time.Second}; len(cfg.Webhook.Schedule) != 3 || cfg.Webhook.Schedule[2] != want[2] {
		t.Errorf("schedule = %v", cfg.Webhook.Schedule)
	}
	if cfg.Plugins.WeChatJSAPI.Settings["app_id"] != "wx123" {
		t.Errorf("app_id = %q", cfg.Plugins.WeChatJSAPI.Settings["app_id"])
	}
	if cfg.Plugins.WeChatJSAPI.Settings["api_base"] == "" {
		t.Errorf("an override of one setting dropped the others: %v", cfg.Plugins.WeChatJSAPI.Settings)
	}
	if cfg.API.MaxAmountFen != 500 {
		t.Errorf("max_amount_fen = %d", cfg.API.MaxAmountFen)
	}
}

func TestEveryProblemReportedAtOnce(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bad.yaml")
	body := `
profile: huifu
upstream:
  base_url: https://api.example.invalid
  timeout: -1s
api:
  listen: nonsense
  max_amount_fen: 0
notify:
  public_url: http://host:7000/notify?x=1
webhook:
  url: http://127.0.0.1:3000/hook
  format: xml
store:
  driver: mysql
tracing:
  exporter: zipkin
unknown_section:
  x: 1
`
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path, noEnv)
	var cerr *Error
	if !errors.As(err, &cerr) {
		t.Fatalf("want *Error, got %v", err)
	}
	keys := map[string]bool{}
	for _, p := range cerr.Problems {
		keys[p.Key] = true
	}
	for _, k := range []string{
		"profile", "upstream.timeout", "upstream.private_key", "upstream.public_key", "api.listen",
		"api.max_amount_fen", "notify.public_url", "webhook.secret", "webhook.format", "store.driver",
		"tracing.exporter", "unknown_section",
	} {
		if !keys[k] {
			t.Errorf("no problem reported for %s; got %v", k, cerr.Problems)
		}
	}
}

func TestSecretsFromFilesNeverInErrors(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "key")
	if err := os.WriteFile(secret, []byte("TOP-SECRET-NOT-A-KEY"), 0o600); err != nil {
		t.Fatal(err)
	}
	hook := filepath.Join(dir, "whsec")
	if err := os.WriteFile(hook, []byte("whsec_c2VjcmV0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load("", func() []string {
		return []string{
			"PAYSIDECAR_UPSTREAM__PRIVATE_KEY_FILE=" + secret,
			"PAYSIDECAR_WEBHOOK__SECRET_FILE=" + hook,
			"PAYSIDECAR_PLUGINS__WECHAT_JSAPI__SETTINGS_FILES__APP_SECRET=" + hook,
		}
	})
	if err == nil {
		t.Fatal("a garbage private key was accepted")
	}
	if strings.Contains(err.Error(), "TOP-SECRET") {
		t.Fatalf("error shows the secret: %v", err)
	}
	if cfg.Webhook.Secret != "whsec_c2VjcmV0" {
		t.Errorf("webhook secret from file = %q", cfg.Webhook.Secret)
	}
	if cfg.Plugins.WeChatJSAPI.Settings["app_secret"] != "whsec_c2VjcmV0" {
		t.Errorf("plugin secret from file not applied")
	}
}

func TestSandboxKeysOnlyOnLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"http://127.0.0.1:8900": true, "http://localhost:1": true, "http://[::1]:2": true,
		"https://api.huifu.com": false, "http://10.0.0.1": false,
	} {
		c := Defaults()
		c.Upstream.BaseURL = host
		if got := c.SandboxKeysAllowed(); got != want {
			t.Errorf("%s: SandboxKeysAllowed = %v", host, got)
		}
	}
}

func TestNotifyLimits(t *testing.T) {
	cfg, err := Load("", func() []string {
		return []string{
			"PAYSIDECAR_NOTIFY__MAX_HEADER_BYTES=4096", "PAYSIDECAR_NOTIFY__READ_TIMEOUT=3s",
			"PAYSIDECAR_NOTIFY__MAX_CONNS=64", "PAYSIDECAR_NOTIFY__MAX_CONNS_PER_SOURCE=4",
			"PAYSIDECAR_NOTIFY__RATE_PER_SOURCE=2.5", "PAYSIDECAR_NOTIFY__BURST_PER_SOURCE=5",
			"PAYSIDECAR_NOTIFY__SOURCES=100", "PAYSIDECAR_NOTIFY__CONCURRENCY=2", "PAYSIDECAR_NOTIFY__RATE_LIMIT_DELAY=250ms",
			"PAYSIDECAR_NOTIFY__QUEUE_TIMEOUT=500ms", "PAYSIDECAR_NOTIFY__DUPLICATE_CACHE=10", "PAYSIDECAR_NOTIFY__DUPLICATE_RATE=0.5", "PAYSIDECAR_NOTIFY__DUPLICATE_BURST=3",
			"PAYSIDECAR_NOTIFY__LOG_REFUSALS=1", "PAYSIDECAR_NOTIFY__LOG_INTERVAL=10s",
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	n := cfg.Notify
	if n.MaxHeaderBytes != 4096 || n.ReadTimeout != 3*time.Second || n.MaxConns != 64 || n.MaxConnsPerSource != 4 ||
		n.RatePerSource != 2.5 || n.BurstPerSource != 5 || n.Sources != 100 || n.Concurrency != 2 ||
		n.QueueTimeout != 500*time.Millisecond || n.RateLimitDelay != 250*time.Millisecond || n.DuplicateCache != 10 || n.DuplicateRate != 0.5 || n.DuplicateBurst != 3 || n.LogRefusals != 1 || n.LogInterval != 10*time.Second {
		t.Errorf("notify limits from the environment: %+v", n)
	}

	bad := []string{}
	for _, k := range []string{"MAX_HEADER_BYTES", "READ_TIMEOUT", "MAX_CONNS", "RATE_PER_SOURCE", "BURST_PER_SOURCE", "RATE_LIMIT_DELAY",
		"SOURCES", "CONCURRENCY", "QUEUE_TIMEOUT", "DUPLICATE_CACHE", "DUPLICATE_RATE", "DUPLICATE_BURST", "LOG_REFUSALS", "LOG_INTERVAL"} {
		bad = append(bad, "PAYSIDECAR_NOTIFY__"+k+"=0")
	}
	_, err = Load("", func() []string { return append(bad, "PAYSIDECAR_NOTIFY__MAX_CONNS_PER_SOURCE=-1") })
	var cerr *Error
	if !errors.As(err, &cerr) {
		t.Fatalf("want *Error, got %v", err)
	}
	keys := map[string]bool{}
	for _, p := range cerr.Problems {
		keys[p.Key] = true
	}
	for _, k := range []string{"notify.max_header_bytes", "notify.read_timeout", "notify.max_conns", "notify.max_conns_per_source",
		"notify.rate_per_source", "notify.burst_per_source", "notify.rate_limit_delay", "notify.sources", "notify.concurrency", "notify.queue_timeout",
		"notify.duplicate_cache", "notify.duplicate_rate", "notify.duplicate_burst", "notify.log_refusals", "notify.log_interval"} {
		if !keys[k] {
			t.Errorf("no problem reported for %s; got %v", k, cerr.Problems)
		}
	}
}

func TestUpstreamPublicKeyNext(t *testing.T) {
	_, a, err := nkp.GenerateKeyPair(2048)
	if err != nil {
		t.Fatal(err)
	}
	_, b, err := nkp.GenerateKeyPair(2048)
	if err != nil {
		t.Fatal(err)
	}
	pubA, _ := nkp.PublicKeyBase64(&a.PublicKey)
	pubB, _ := nkp.PublicKeyBase64(&b.PublicKey)
	next := filepath.Join(t.TempDir(), "next.pub")
	if err := os.WriteFile(next, []byte(pubB+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load("", func() []string {
		return []string{"PAYSIDECAR_UPSTREAM__PUBLIC_KEY=" + pubA, "PAYSIDECAR_UPSTREAM__PUBLIC_KEY_NEXT_FILE=" + next}
	})
	if err != nil || cfg.Upstream.PublicKeyNext != pubB {
		t.Fatalf("two keys: %v, next %q", err, cfg.Upstream.PublicKeyNext)
	}
	for name, env := range map[string][]string{
		"next without current": {"PAYSIDECAR_UPSTREAM__PUBLIC_KEY_NEXT=" + pubB},
		"the same key twice":   {"PAYSIDECAR_UPSTREAM__PUBLIC_KEY=" + pubA, "PAYSIDECAR_UPSTREAM__PUBLIC_KEY_NEXT=" + pubA},
		"not a key":            {"PAYSIDECAR_UPSTREAM__PUBLIC_KEY=" + pubA, "PAYSIDECAR_UPSTREAM__PUBLIC_KEY_NEXT=bm90IGEga2V5"},
	} {
		_, err := Load("", func() []string { return env })
		var cerr *Error
		if !errors.As(err, &cerr) || len(cerr.Problems) != 1 || cerr.Problems[0].Key != "upstream.public_key_next" {
			t.Errorf("%s: %v, want one problem with upstream.public_key_next", name, err)
		}
	}
}
