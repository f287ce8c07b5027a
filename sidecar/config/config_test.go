package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/paysidecar/paysidecar/sidecar/nkp"
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

func writeFile(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestYAMLErrorsNameTheirLine checks that a file that is not YAML is
// reported at the line where it goes wrong, and a value of the wrong kind
// at the line of its key.
func TestYAMLErrorsNameTheirLine(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"tab indentation", "profile: nkp\napi:\n  listen: 127.0.0.1:8080\n\twebhook: x\n", ":4:1: not valid YAML"},
		{"unclosed flow sequence", "profile: nkp\nwebhook:\n  timeout: 10s\n  schedule: [1s, 2s\n", ":4:13: not valid YAML"},
		{"unclosed quote", "# comment\nprofile: nkp\napi:\n  listen: \"127.0.0.1:8080\nnotify:\n  listen: x\n", ":4:11: not valid YAML"},
		{"bad duration", "profile: nkp\n\nwebhook:\n  url: http://127.0.0.1:3000/hook\n  timeout: soon\n", ":5: webhook.timeout: not a duration"},
		{"bad number", "api:\n  listen: 127.0.0.1:8080\n  max_body_bytes: lots\n", ":3: api.max_body_bytes:"},
		{"invalid value", "log:\n  format: xml\n  level: info\n", ":2: log.format: must be text or json"},
		{"list element", "webhook:\n  schedule:\n    - 1s\n    - -5s\n", ":4: webhook.schedule[1]: must be positive"},
		{"unknown key", "api:\n  listen: 127.0.0.1:8080\n\n  tokne: x\n", ":4: api.tokne: unknown setting"},
		{"missing key under its block", "profile: nkp\nwebhook:\n  url: http://127.0.0.1:3000/hook\n", ":2: webhook.secret: required"},
		{"unknown block", "api:\n  listen: 127.0.0.1:8080\napix:\n  token: x\n", ":3: apix"},
		{"key with a block list", "webhook:\n  url: http://127.0.0.1:3000/hook\n  secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n  schedule:\n    - 0s\n", ":5: webhook.schedule[0]: must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.body)
			_, err := Load(path, noEnv)
			if err == nil || !strings.Contains(err.Error(), path+tt.want) {
				t.Errorf("got %v\nwant it to contain %q", err, path+tt.want)
			}
		})
	}
}

// TestKubernetesServiceLinksAreNotSettings loads the defaults with the
// variables Kubernetes gives a pod for the Services paysidecar-notify and
// paysidecar, while a mistyped setting is still refused.
func TestKubernetesServiceLinksAreNotSettings(t *testing.T) {
	links := []string{
		"PAYSIDECAR_NOTIFY_SERVICE_HOST=10.96.0.12",
		"PAYSIDECAR_NOTIFY_SERVICE_PORT=8001",
		"PAYSIDECAR_NOTIFY_SERVICE_PORT_NOTIFY=8001",
		"PAYSIDECAR_NOTIFY_PORT=tcp://10.96.0.12:8001",
		"PAYSIDECAR_NOTIFY_PORT_8001_TCP=tcp://10.96.0.12:8001",
		"PAYSIDECAR_NOTIFY_PORT_8001_TCP_PROTO=tcp",
		"PAYSIDECAR_NOTIFY_PORT_8001_TCP_PORT=8001",
		"PAYSIDECAR_NOTIFY_PORT_8001_TCP_ADDR=10.96.0.12",
		"PAYSIDECAR_SERVICE_HOST=10.96.0.13",
		"PAYSIDECAR_SERVICE_PORT=9090",
		"PAYSIDECAR_PORT=tcp://10.96.0.13:9090",
		"PAYSIDECAR_PORT_9090_TCP=tcp://10.96.0.13:9090",
		"PAYSIDECAR_PG_REPLICA_PORT_5432_TCP_ADDR=10.96.0.14",
		"PAYSIDECAR_V6_SERVICE_HOST=fd00::12",
		"PAYSIDECAR_V6_PORT=tcp://[fd00::12]:8001",
	}
	if _, err := Load("", func() []string { return links }); err != nil {
		t.Fatalf("a pod with service links does not start: %v", err)
	}
	tests := []struct {
		env, key, msg string
	}{
		{"PAYSIDECAR_NOTIFY_LISTEN=0.0.0.0:8001", "notify_listen", "did you mean PAYSIDECAR_NOTIFY__LISTEN?"},
		{"PAYSIDECAR_WEBHOOK__URLL=http://127.0.0.1:3000/", "webhook.urll", "unknown setting"},
		{"PAYSIDECAR_NOTIFY__PORT=8001", "notify.port", "unknown setting"},
		{"PAYSIDECAR_PROFILES=nkp", "profiles", "unknown setting"},
		{"PAYSIDECAR_API_TOKEN=x", "api_token", "did you mean PAYSIDECAR_API__TOKEN?"},
		// The shape of a service link with a value Kubernetes never gives.
		{"PAYSIDECAR_NOTIFY_PORT=8001", "notify_port", "unknown setting"},
		{"PAYSIDECAR_NOTIFY_SERVICE_HOST=notify.example.com", "notify_service_host", "unknown setting"},
		{"PAYSIDECAR_NOTIFY_SERVICE_PORT=http", "notify_service_port", "unknown setting"},
		{"PAYSIDECAR_NOTIFY_PORT_8001_TCP_PROTO=http", "notify_port_8001_tcp_proto", "unknown setting"},
	}
	for _, tt := range tests {
		_, err := Load("", func() []string { return append(slices.Clone(links), tt.env) })
		var cerr *Error
		if !errors.As(err, &cerr) || len(cerr.Problems) != 1 {
			t.Errorf("%s: want one problem, got %v", tt.env, err)
			continue
		}
		p := cerr.Problems[0]
		name, _, _ := strings.Cut(tt.env, "=")
		if p.Key != tt.key || !strings.Contains(p.Message, tt.msg) || p.Env != name {
			t.Errorf("%s: got %+v, want key %s saying %q", tt.env, p, tt.key, tt.msg)
		}
	}
}

func TestAPITokenRequiredOffLoopback(t *testing.T) {
	tests := []struct {
		listen, token string
		ok            bool
	}{
		{"127.0.0.1:8080", "", true},
		{"localhost:8080", "", true},
		{"[::1]:8080", "", true},
		{"0.0.0.0:8080", "", false},
		{":8080", "", false},
		{"[::]:8080", "", false},
		{"10.1.2.3:8080", "", false},
		{"0.0.0.0:8080", "a-token", true},
	}
	for _, tt := range tests {
		_, err := Load("", func() []string {
			return []string{"PAYSIDECAR_API__LISTEN=" + tt.listen, "PAYSIDECAR_API__TOKEN=" + tt.token}
		})
		if ok := err == nil; ok != tt.ok {
			t.Errorf("listen %s token %q: err = %v, want ok %v", tt.listen, tt.token, err, tt.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "api.token") {
			t.Errorf("listen %s: the problem does not name api.token: %v", tt.listen, err)
		}
	}
}

func TestWebhookSecretCheckedAsDeliveryWould(t *testing.T) {
	tests := []struct {
		secret string
		ok     bool
	}{
		{"whsec_" + "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0", true},
		{"sixteen-bytes-ok", true},
		{"7-bytes", false},
		{"whsec_c2VjcmV0", false},
		{"whsec_not base64!", false},
	}
	for _, tt := range tests {
		_, err := Load("", func() []string {
			return []string{"PAYSIDECAR_WEBHOOK__URL=http://127.0.0.1:3000/hook", "PAYSIDECAR_WEBHOOK__SECRET=" + tt.secret}
		})
		if ok := err == nil; ok != tt.ok {
			t.Errorf("secret %q: err = %v, want ok %v", tt.secret, err, tt.ok)
		}
		if err != nil && (strings.Contains(err.Error(), tt.secret) || !strings.Contains(err.Error(), "webhook.secret")) {
			t.Errorf("secret %q: the problem shows the secret or does not name the key: %v", tt.secret, err)
		}
	}
}

func TestValidateMatchesLoad(t *testing.T) {
	c := Defaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	c.Webhook.URL, c.Webhook.Secret = "http://127.0.0.1:3000/hook", "short"
	c.API.Listen = "0.0.0.0:8080"
	var cerr *Error
	if err := c.Validate(); !errors.As(err, &cerr) || len(cerr.Problems) != 2 {
		t.Fatalf("Validate: %v", err)
	}
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
