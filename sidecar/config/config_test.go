package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
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

func TestPostgresMaxConns(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  int
		bad   bool
	}{
		{"", 0, false},
		{"2", 2, false},
		{"32", 32, false},
		{"1", 0, true},
		{"-4", 0, true},
		{"1001", 0, true},
	} {
		var env []string
		if tc.value != "" {
			env = append(env, "PAYSIDECAR_STORE__POSTGRES_MAX_CONNS="+tc.value)
		}
		cfg, err := Load("", func() []string { return env })
		var cerr *Error
		bad := errors.As(err, &cerr) && slices.ContainsFunc(cerr.Problems, func(p Problem) bool { return p.Key == "store.postgres_max_conns" })
		if bad != tc.bad {
			t.Errorf("postgres_max_conns %q: error %v, want a problem with the key: %v", tc.value, err, tc.bad)
		}
		if !tc.bad && err == nil && cfg.Store.PostgresMaxConns != tc.want {
			t.Errorf("postgres_max_conns %q = %d, want %d", tc.value, cfg.Store.PostgresMaxConns, tc.want)
		}
	}
}
