package config

import (
	"errors"
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
	if cfg.Store.Driver != "sqlite" || cfg.Plugins.Dir != "bin/plugins" || len(cfg.Plugins.Flows) != 0 || len(cfg.Hints) != 0 {
		t.Fatalf("defaults: store %q, plugins from %q, flows %v, hints %v: the defaults name no flow", cfg.Store.Driver, cfg.Plugins.Dir, cfg.Plugins.Flows, cfg.Hints)
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
	if len(cfg.Hints) != 0 {
		t.Errorf("the example uses old forms: %v", cfg.Hints)
	}
}

func TestEnvironmentOverrides(t *testing.T) {
	cfg, err := Load("", func() []string {
		return []string{
			"PAYSIDECAR_UPSTREAM__SYS_ID=6666000123",
			"PAYSIDECAR_WEBHOOK__SCHEDULE=1s,2s,3s",
			"PAYSIDECAR_PLUGINS__FLOWS__WECHAT_JSAPI__SETTINGS__APP_ID=wx123",
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
	if got := cfg.Plugins.Flows["wechat-jsapi"].Settings["app_id"]; got != "wx123" {
		t.Errorf("app_id = %q", got)
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
			"PAYSIDECAR_PLUGINS__FLOWS__WECHAT_JSAPI__SETTINGS_FILES__APP_SECRET=" + hook,
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
	if cfg.Plugins.Flows["wechat-jsapi"].Settings["app_secret"] != "whsec_c2VjcmV0" {
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

func writeFile(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestFlowsAreAMap checks the flows map: a file's "-" names and the
// environment's "_" names configure the same flow, one setting can be
// overridden without dropping the others, and a flow may be disabled or
// pointed elsewhere.
func TestFlowsAreAMap(t *testing.T) {
	path := writeFile(t, `
plugins:
  dir: /usr/lib/paysidecar/plugins
  flows:
    acme-pay:
      path: /opt/acme/acme-pay
      keys: [merchant]
      settings:
        app_id: from-file
        region: cn
    wechat-miniapp:
      enabled: false
`)
	cfg, err := Load(path, func() []string {
		return []string{"PAYSIDECAR_PLUGINS__FLOWS__ACME_PAY__SETTINGS__APP_ID=from-env"}
	})
	if err != nil {
		t.Fatal(err)
	}
	acme := cfg.Plugins.Flows["acme-pay"]
	if acme.Settings["app_id"] != "from-env" || acme.Settings["region"] != "cn" || acme.Path != "/opt/acme/acme-pay" || !acme.IsEnabled() || acme.Keys[0] != "merchant" {
		t.Errorf("acme-pay = %+v", acme)
	}
	if _, ok := cfg.Plugins.Flows["acme_pay"]; ok || len(cfg.Plugins.Flows) != 2 {
		t.Errorf("flows = %v, want acme-pay and wechat-miniapp only", cfg.Plugins.Flows)
	}
	if cfg.Plugins.Flows["wechat-miniapp"].IsEnabled() {
		t.Errorf("wechat-miniapp is enabled")
	}
	if len(cfg.Hints) != 0 {
		t.Errorf("hints for a configuration in the current form: %v", cfg.Hints)
	}
}

// TestOldFlowFormStillWorks loads configurations written before flows
// were a map: any plugins.<flow> entry, whatever the flow, becomes
// plugins.flows.<flow-name> with a hint saying exactly what to write.
func TestOldFlowFormStillWorks(t *testing.T) {
	path := writeFile(t, `
plugins:
  dir: bin/plugins
  wechat_jsapi:
    enabled: true
    settings:
      app_id: wx-old
      api_base: https://api.weixin.qq.com
  some_future_pay:
    enabled: false
  wechat_miniapp:
    settings:
      app_id: wx-old-mini
  flows:
    wechat-miniapp:
      settings:
        app_id: wx-new-mini
`)
	cfg, err := Load(path, func() []string {
		return []string{"PAYSIDECAR_PLUGINS__WECHAT_JSAPI__SETTINGS__APP_SECRET=old-env-secret"}
	})
	if err != nil {
		t.Fatal(err)
	}
	jsapi := cfg.Plugins.Flows["wechat-jsapi"]
	if jsapi.Settings["app_id"] != "wx-old" || jsapi.Settings["api_base"] != "https://api.weixin.qq.com" || jsapi.Settings["app_secret"] != "old-env-secret" {
		t.Errorf("wechat-jsapi = %+v", jsapi)
	}
	if cfg.Plugins.Flows["some-future-pay"].IsEnabled() {
		t.Errorf("an old-form disabled flow is enabled")
	}
	if got := cfg.Plugins.Flows["wechat-miniapp"].Settings["app_id"]; got != "wx-new-mini" {
		t.Errorf("the new form does not win over the old: app_id %q", got)
	}
	want := []string{
		"plugins.some_future_pay is the old form of a flow's configuration and still works; write it as plugins.flows.some-future-pay (in the environment PAYSIDECAR_PLUGINS__FLOWS__SOME_FUTURE_PAY__…)",
		"plugins.wechat_jsapi is the old form of a flow's configuration and still works; write it as plugins.flows.wechat-jsapi (in the environment PAYSIDECAR_PLUGINS__FLOWS__WECHAT_JSAPI__…)",
		"plugins.wechat_miniapp is the old form of a flow's configuration and still works; write it as plugins.flows.wechat-miniapp (in the environment PAYSIDECAR_PLUGINS__FLOWS__WECHAT_MINIAPP__…)",
	}
	if strings.Join(cfg.Hints, "\n") != strings.Join(want, "\n") {
		t.Errorf("hints =\n%s\nwant\n%s", strings.Join(cfg.Hints, "\n"), strings.Join(want, "\n"))
	}
}

func TestFlowAndKeyProblems(t *testing.T) {
	path := writeFile(t, `
plugins:
  dir: ""
  flows:
    Bad.Name:
      path: /x
    no-path: {}
    bad-sum:
      path: /x
      sha256: abc
    no-key:
      path: /x
      keys: [merchant, upstream, partner, missing]
    off:
      enabled: false
  stray: 5
keys:
  partner:
    public_key: not-a-key
  merchant:
    private_key: x
  empty: {}
`)
	_, err := Load(path, noEnv)
	var cerr *Error
	if !errors.As(err, &cerr) {
		t.Fatalf("want *Error, got %v", err)
	}
	got := map[string]string{}
	for _, p := range cerr.Problems {
		got[p.Key] = p.Message
	}
	for key, want := range map[string]string{
		"plugins.flows.Bad.Name":       "a flow name is",
		"plugins.flows.no-path.path":   "required when plugins.dir is empty",
		"plugins.flows.bad-sum.sha256": "64 hex digits",
		"plugins.flows.no-key.keys[3]": `no key "missing"`,
		"plugins.stray":                "unknown setting",
		"keys.partner.public_key":      "not an RSA public key",
		"keys.merchant":                "built in",
		"keys.empty":                   "give private_key or public_key",
	} {
		if !strings.Contains(got[key], want) {
			t.Errorf("%s: problem %q, want one containing %q (all: %v)", key, got[key], want, cerr.Problems)
		}
	}
	for _, key := range []string{"plugins.flows.no-key.keys[0]", "plugins.flows.no-key.keys[1]", "plugins.flows.no-key.keys[2]", "plugins.flows.off.path"} {
		if _, ok := got[key]; ok {
			t.Errorf("%s reported: %s", key, got[key])
		}
	}
}
