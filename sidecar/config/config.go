// Package config loads, defaults and validates the sidecar's settings.
//
// Settings come, in rising precedence, from the embedded defaults (which
// run the sidecar against the sandbox upstream with SQLite and all three
// flow plugins), an optional YAML file, and environment variables named
// PAYSIDECAR_<KEY>, where a double underscore separates levels:
// PAYSIDECAR_UPSTREAM__SYS_ID sets upstream.sys_id. Secrets are read from
// files named by *_file keys, so they need not appear in the file or the
// environment. Validation reports every problem at once, each with its key.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/providers/structs"
	"github.com/knadh/koanf/v2"

	"github.com/paysidecar/paysidecar/sidecar/delivery"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
)

// EnvPrefix starts every environment variable the sidecar reads.
const EnvPrefix = "PAYSIDECAR_"

// Config is the whole configuration of the sidecar.
type Config struct {
	// Profile selects the upstream's field dialect: "nkp" or "dougong".
	Profile  string         `koanf:"profile"`
	Upstream UpstreamConfig `koanf:"upstream"`
	API      APIConfig      `koanf:"api"`
	Notify   NotifyConfig   `koanf:"notify"`
	Webhook  WebhookConfig  `koanf:"webhook"`
	Requery  RequeryConfig  `koanf:"requery"`
	Store    StoreConfig    `koanf:"store"`
	Plugins  PluginsConfig  `koanf:"plugins"`
	Admin    AdminConfig    `koanf:"admin"`
	Tracing  TracingConfig  `koanf:"tracing"`
	Log      LogConfig      `koanf:"log"`
	Sandbox  SandboxConfig  `koanf:"sandbox"`
}

// UpstreamConfig describes the payment aggregator and the merchant's
// credentials for it.
type UpstreamConfig struct {
	BaseURL   string `koanf:"base_url"`
	SysID     string `koanf:"sys_id"`
	ProductID string `koanf:"product_id"`
	// MerchantID is the default huifu_id of the merchant doing the trade.
	MerchantID string `koanf:"merchant_id"`
	// PrivateKey is the merchant's RSA private key (base64 DER or PEM).
	PrivateKey     string `koanf:"private_key"`
	PrivateKeyFile string `koanf:"private_key_file"`
	// PublicKey is the upstream's RSA public key that verifies answers
	// and notifications.
	PublicKey     string `koanf:"public_key"`
	PublicKeyFile string `koanf:"public_key_file"`
	// PublicKeyNext is the upstream's new public key during a key
	// switch-over: answers and notifications verify with either.
	PublicKeyNext     string        `koanf:"public_key_next"`
	PublicKeyNextFile string        `koanf:"public_key_next_file"`
	Timeout           time.Duration `koanf:"timeout"`
	// Passthrough lists the upstream paths the app API may call through
	// POST /v1/upstream/{path}, signed by the sidecar.
	Passthrough []string `koanf:"passthrough"`
}

// APIConfig configures the app API listener.
type APIConfig struct {
	Listen         string        `koanf:"listen"`
	MaxBodyBytes   int64         `koanf:"max_body_bytes"`
	MaxAmountFen   int64         `koanf:"max_amount_fen"`
	IdempotencyTTL time.Duration `koanf:"idempotency_ttl"`
	// Token, when set, is required as "Authorization: Bearer <token>".
	Token     string `koanf:"token"`
	TokenFile string `koanf:"token_file"`
}

// NotifyConfig configures the notification ingress.
type NotifyConfig struct {
	// Listen is the ingress address; the upstream only calls ports
	// 8000–9005.
	Listen string `koanf:"listen"`
	// PublicURL is the notify_url sent upstream: how the upstream
	// reaches Listen from outside.
	PublicURL    string `koanf:"public_url"`
	MaxBodyBytes int64  `koanf:"max_body_bytes"`
	// MaxHeaderBytes bounds a request's line and headers; ReadTimeout
	// the time to read a whole request.
	MaxHeaderBytes int           `koanf:"max_header_bytes"`
	ReadTimeout    time.Duration `koanf:"read_timeout"`
	// MaxConns bounds the open connections, MaxConnsPerSource those from
	// one source address (an IPv4 address or an IPv6 /64).
	MaxConns          int `koanf:"max_conns"`
	MaxConnsPerSource int `koanf:"max_conns_per_source"`
	// RatePerSource and BurstPerSource are the token bucket of one
	// source, in requests per second; Sources bounds how many sources
	// are tracked.
	RatePerSource  float64 `koanf:"rate_per_source"`
	BurstPerSource int     `koanf:"burst_per_source"`
	Sources        int     `koanf:"sources"`
	// RateLimitDelay is how long a request over its source's rate waits
	// for its 429.
	RateLimitDelay time.Duration `koanf:"rate_limit_delay"`
	// Concurrency bounds the notifications verified and processed at
	// once; QueueTimeout how long one waits for its turn.
	Concurrency  int           `koanf:"concurrency"`
	QueueTimeout time.Duration `koanf:"queue_timeout"`
	// DuplicateCache is how many acknowledged notifications are
	// remembered to answer their duplicates from memory.
	DuplicateCache int `koanf:"duplicate_cache"`
	// DuplicateRate and DuplicateBurst bound how often the duplicates of
	// one notification are acknowledged from memory.
	DuplicateRate  float64 `koanf:"duplicate_rate"`
	DuplicateBurst int     `koanf:"duplicate_burst"`
	// LogRefusals refusals of one reason are logged one by one in each
	// LogInterval; the rest as a count.
	LogRefusals int           `koanf:"log_refusals"`
	LogInterval time.Duration `koanf:"log_interval"`
}

// WebhookConfig configures delivery to the application.
type WebhookConfig struct {
	URL        string        `koanf:"url"`
	Secret     string        `koanf:"secret"`
	SecretFile string        `koanf:"secret_file"`
	Timeout    time.Duration `koanf:"timeout"`
	// Schedule is the list of delays between attempts; after the last
	// one an event goes to dead letters.
	Schedule []time.Duration `koanf:"schedule"`
	// Format is "json" (Standard Webhooks) or "form" (the upstream's own
	// form fields).
	Format      string `koanf:"format"`
	Concurrency int    `koanf:"concurrency"`
}

// RequeryConfig configures the reverse query of unfinished orders.
type RequeryConfig struct {
	Schedule     []time.Duration `koanf:"schedule"`
	Grace        time.Duration   `koanf:"grace"`
	RefundMaxAge time.Duration   `koanf:"refund_max_age"`
	CloseExpired bool            `koanf:"close_expired"`
	Interval     time.Duration   `koanf:"interval"`
}

// StoreConfig selects and configures the store.
type StoreConfig struct {
	// Driver is "sqlite" or "postgres".
	Driver          string `koanf:"driver"`
	SQLitePath      string `koanf:"sqlite_path"`
	PostgresDSN     string `koanf:"postgres_dsn"`
	PostgresDSNFile string `koanf:"postgres_dsn_file"`
}

// PluginsConfig configures the flow plugins.
type PluginsConfig struct {
	// Dir holds the plugin binaries, named after their flows.
	Dir           string     `koanf:"dir"`
	WeChatJSAPI   FlowConfig `koanf:"wechat_jsapi"`
	WeChatMiniApp FlowConfig `koanf:"wechat_miniapp"`
	AlipayNative  FlowConfig `koanf:"alipay_native"`
}

// FlowConfig configures one flow plugin.
type FlowConfig struct {
	Enabled bool `koanf:"enabled"`
	// Path of the binary; Dir/<flow name> when empty.
	Path string `koanf:"path"`
	// SHA256 of the binary; computed at start and logged when empty.
	SHA256 string `koanf:"sha256"`
	// Settings are handed to the plugin, and only to it.
	Settings map[string]string `koanf:"settings"`
	// SettingsFiles maps a setting name to a file holding its value,
	// for secrets such as app_secret.
	SettingsFiles map[string]string `koanf:"settings_files"`
}

// AdminConfig configures the listener for /metrics, /healthz and /readyz.
type AdminConfig struct {
	Listen string `koanf:"listen"`
}

// TracingConfig configures OpenTelemetry tracing.
type TracingConfig struct {
	// Exporter is "none", "stdout" or "otlp".
	Exporter     string  `koanf:"exporter"`
	OTLPEndpoint string  `koanf:"otlp_endpoint"`
	SampleRatio  float64 `koanf:"sample_ratio"`
}

// LogConfig configures logging.
type LogConfig struct {
	Level  string `koanf:"level"`
	Format string `koanf:"format"`
}

// SandboxConfig configures the sandbox upstream that `paysidecar run
// --sandbox` starts in the same process.
type SandboxConfig struct {
	Listen string `koanf:"listen"`
	// AutoSettle pays every order this long after it is placed; zero
	// leaves settling to the sandbox's controls and cashier page.
	AutoSettle time.Duration `koanf:"auto_settle"`
	Seed       int64         `koanf:"seed"`
}

// Flow names as the plugins report them.
const (
	FlowWeChatJSAPI   = "wechat-jsapi"
	FlowWeChatMiniApp = "wechat-miniapp"
	FlowAlipayNative  = "alipay-native"
)

// Flows returns the flow configurations by flow name.
func (p PluginsConfig) Flows() map[string]FlowConfig {
	return map[string]FlowConfig{
		FlowWeChatJSAPI:   p.WeChatJSAPI,
		FlowWeChatMiniApp: p.WeChatMiniApp,
		FlowAlipayNative:  p.AlipayNative,
	}
}

// Defaults returns the embedded defaults: the sandbox upstream on
// loopback, SQLite in ./.paysidecar, all three plugins from ./bin/plugins.
func Defaults() Config {
	return Config{
		Profile: string(nkp.ProfileNKP),
		Upstream: UpstreamConfig{
			BaseURL:    "http://127.0.0.1:8900",
			SysID:      "6666000100000001",
			ProductID:  "PAYSIDECAR_SANDBOX",
			MerchantID: "6666000100000001",
			Timeout:    15 * time.Second,
			Passthrough: []string{
				nkp.PathFileQuery, nkp.PathMerchantStatus, nkp.PathMerchantQuery, nkp.PathRealnameQuery,
			},
		},
		API: APIConfig{
			Listen:         "127.0.0.1:8080",
			MaxBodyBytes:   64 << 10,
			MaxAmountFen:   100_000_00, // 100,000 yuan
			IdempotencyTTL: 24 * time.Hour,
		},
		Notify: NotifyConfig{
			Listen:            "127.0.0.1:8001",
			PublicURL:         "http://127.0.0.1:8001/notify",
			MaxBodyBytes:      64 << 10,
			MaxHeaderBytes:    8 << 10,
			ReadTimeout:       10 * time.Second,
			MaxConns:          1024,
			MaxConnsPerSource: 32,
			RatePerSource:     200,
			BurstPerSource:    400,
			Sources:           4096,
			RateLimitDelay:    time.Second,
			Concurrency:       4,
			QueueTimeout:      2 * time.Second,
			DuplicateCache:    4096,
			DuplicateRate:     1,
			DuplicateBurst:    10,
			LogRefusals:       10,
			LogInterval:       time.Minute,
		},
		Webhook: WebhookConfig{
			Timeout: 10 * time.Second,
			// Retries are jittered inside the gaps of this schedule, so
			// delivery is tried for at least the sum of all but its last
			// step: over 31 hours, outlasting the upstream's own retries.
			Schedule:    slices.Clone(delivery.DefaultSchedule),
			Format:      "json",
			Concurrency: 8,
		},
		Requery: RequeryConfig{
			Schedule: []time.Duration{
				15 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute,
			},
			Grace:        10 * time.Minute,
			RefundMaxAge: 24 * time.Hour,
			CloseExpired: true,
			Interval:     time.Second,
		},
		Store: StoreConfig{
			Driver:     "sqlite",
			SQLitePath: ".paysidecar/paysidecar.db",
		},
		Plugins: PluginsConfig{
			Dir: "bin/plugins",
			WeChatJSAPI: FlowConfig{Enabled: true, Settings: map[string]string{
				"app_id":     "wxsandbox00000001",
				"oauth_base": "http://127.0.0.1:8900",
				"api_base":   "http://127.0.0.1:8900",
			}},
			WeChatMiniApp: FlowConfig{Enabled: true, Settings: map[string]string{
				"app_id":      "wxsandbox00000002",
				"api_base":    "http://127.0.0.1:8900",
				"original_id": "gh_0sandbox0001",
			}},
			AlipayNative: FlowConfig{Enabled: true, Settings: map[string]string{}},
		},
		Admin:   AdminConfig{Listen: "127.0.0.1:9090"},
		Tracing: TracingConfig{Exporter: "none", SampleRatio: 1},
		Log:     LogConfig{Level: "info", Format: "text"},
		Sandbox: SandboxConfig{Listen: "127.0.0.1:8900", Seed: 1},
	}
}

// Error lists every validation problem, each with the key it concerns.
type Error struct {
	Problems []Problem
}

// Problem is one invalid setting.
type Problem struct {
	Key     string
	Message string
}

// Error implements error, one problem a line.
func (e *Error) Error() string {
	lines := make([]string, 0, len(e.Problems))
	for _, p := range e.Problems {
		lines = append(lines, p.Key+": "+p.Message)
	}
	return "invalid configuration:\n  " + strings.Join(lines, "\n  ")
}

func (e *Error) add(key, format string, args ...any) {
	e.Problems = append(e.Problems, Problem{Key: key, Message: fmt.Sprintf(format, args...)})
}

// Load reads the defaults, then path (when not empty), then the
// environment given by environ (os.Environ when nil), reads secret files,
// and validates. Every problem found is reported in one *Error.
func Load(path string, environ func() []string) (Config, error) {
	k := koanf.New(".")
	if err := k.Load(structs.Provider(Defaults(), "koanf"), nil); err != nil {
		return Config{}, fmt.Errorf("load defaults: %w", err)
	}
	// The structs provider keeps map[string]string values as they are,
	// which later layers could then only replace whole; turn them into
	// ordinary nested maps so that one plugin setting can be overridden
	// without dropping the others.
	raw := anyMaps(k.Raw()).(map[string]any)
	k = koanf.New(".")
	if err := k.Load(confmap.Provider(raw, ""), nil); err != nil {
		return Config{}, fmt.Errorf("load defaults: %w", err)
	}
	if path != "" {
		if err := k.Load(file.Provider(path), yaml.Parser()); err != nil {
			return Config{}, fmt.Errorf("load %s: %w", path, err)
		}
	}
	if environ == nil {
		environ = os.Environ
	}
	envErr := &Error{}
	if err := k.Load(env.Provider(".", env.Opt{
		Prefix:      EnvPrefix,
		EnvironFunc: environ,
		TransformFunc: func(key, value string) (string, any) {
			name := strings.ToLower(strings.TrimPrefix(key, EnvPrefix))
			if name == "config" {
				// PAYSIDECAR_CONFIG names the file; it is not a setting.
				return "", nil
			}
			name = strings.ReplaceAll(name, "__", ".")
			if strings.Contains(value, ",") && listKeys[name] {
				return name, strings.Split(value, ",")
			}
			return name, value
		},
	}), nil); err != nil {
		return Config{}, fmt.Errorf("load environment: %w", err)
	}
	var cfg Config
	var md mapstructure.Metadata
	dc := &mapstructure.DecoderConfig{
		DecodeHook: mapstructure.ComposeDecodeHookFunc(
			mapstructure.StringToTimeDurationHookFunc(),
			mapstructure.StringToSliceHookFunc(","),
		),
		WeaklyTypedInput: true,
		Metadata:         &md,
		TagName:          "koanf",
	}
	if err := k.UnmarshalWithConf("", &cfg, koanf.UnmarshalConf{DecoderConfig: dc}); err != nil {
		return Config{}, fmt.Errorf("decode configuration: %w", err)
	}
	for _, key := range md.Unused {
		envErr.add(key, "unknown setting")
	}
	cfg.readSecretFiles(envErr)
	cfg.validate(envErr)
	if len(envErr.Problems) > 0 {
		sort.SliceStable(envErr.Problems, func(i, j int) bool { return envErr.Problems[i].Key < envErr.Problems[j].Key })
		return cfg, envErr
	}
	return cfg, nil
}

func anyMaps(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			t[k] = anyMaps(e)
		}
		return t
	case map[string]string:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[k] = e
		}
		return m
	}
	return v
}

// listKeys are the settings that take a comma-separated list from the
// environment.
var listKeys = map[string]bool{
	"upstream.passthrough": true,
	"webhook.schedule":     true,
	"requery.schedule":     true,
}

func readSecret(e *Error, key, path string, dst *string) {
	if path == "" {
		return
	}
	b, err := os.ReadFile(path)
	if err != nil {
		// The path is not secret; the content is never shown.
		e.add(key, "cannot read %s: %v", path, errors.Unwrap(err))
		return
	}
	*dst = strings.TrimSpace(string(b))
}

func (c *Config) readSecretFiles(e *Error) {
	readSecret(e, "upstream.private_key_file", c.Upstream.PrivateKeyFile, &c.Upstream.PrivateKey)
	readSecret(e, "upstream.public_key_file", c.Upstream.PublicKeyFile, &c.Upstream.PublicKey)
	readSecret(e, "upstream.public_key_next_file", c.Upstream.PublicKeyNextFile, &c.Upstream.PublicKeyNext)
	readSecret(e, "api.token_file", c.API.TokenFile, &c.API.Token)
	readSecret(e, "webhook.secret_file", c.Webhook.SecretFile, &c.Webhook.Secret)
	readSecret(e, "store.postgres_dsn_file", c.Store.PostgresDSNFile, &c.Store.PostgresDSN)
	for name, key := range map[string]*FlowConfig{
		"wechat_jsapi": &c.Plugins.WeChatJSAPI, "wechat_miniapp": &c.Plugins.WeChatMiniApp, "alipay_native": &c.Plugins.AlipayNative,
	} {
		for setting, path := range key.SettingsFiles {
			var v string
			readSecret(e, "plugins."+name+".settings_files."+setting, path, &v)
			if v != "" {
				if key.Settings == nil {
					key.Settings = map[string]string{}
				}
				key.Settings[setting] = v
			}
		}
	}
}

func (c *Config) validate(e *Error) {
	if err := nkp.Profile(c.Profile).Validate(); err != nil {
		e.add("profile", "%v", err)
	}
	checkURL(e, "upstream.base_url", c.Upstream.BaseURL, true)
	required(e, "upstream.sys_id", c.Upstream.SysID)
	required(e, "upstream.product_id", c.Upstream.ProductID)
	required(e, "upstream.merchant_id", c.Upstream.MerchantID)
	if c.Upstream.PrivateKey != "" {
		if _, err := nkp.ParsePrivateKey(c.Upstream.PrivateKey); err != nil {
			e.add("upstream.private_key", "not an RSA private key in base64 DER or PEM")
		}
	} else if !c.SandboxKeysAllowed() {
		e.add("upstream.private_key", "required (or upstream.private_key_file)")
	}
	if c.Upstream.PublicKey != "" {
		if _, err := nkp.ParsePublicKey(c.Upstream.PublicKey); err != nil {
			e.add("upstream.public_key", "not an RSA public key in base64 DER or PEM")
		}
	} else if !c.SandboxKeysAllowed() {
		e.add("upstream.public_key", "required (or upstream.public_key_file)")
	}
	if c.Upstream.PublicKeyNext != "" {
		next, err := nkp.ParsePublicKey(c.Upstream.PublicKeyNext)
		switch {
		case err != nil:
			e.add("upstream.public_key_next", "not an RSA public key in base64 DER or PEM")
		case c.Upstream.PublicKey == "":
			e.add("upstream.public_key_next", "needs upstream.public_key, the key in use until the switch-over")
		default:
			if cur, err := nkp.ParsePublicKey(c.Upstream.PublicKey); err == nil && cur.Equal(next) {
				e.add("upstream.public_key_next", "is the same key as upstream.public_key")
			}
		}
	}
	positive(e, "upstream.timeout", c.Upstream.Timeout)
	for i, p := range c.Upstream.Passthrough {
		if !strings.HasPrefix(p, "/v2/") {
			e.add(fmt.Sprintf("upstream.passthrough[%d]", i), "must be an upstream path starting with /v2/")
		}
	}
	checkListen(e, "api.listen", c.API.Listen)
	if c.API.MaxBodyBytes <= 0 {
		e.add("api.max_body_bytes", "must be positive")
	}
	if c.API.MaxAmountFen <= 0 || c.API.MaxAmountFen > int64(nkp.MaxFen) {
		e.add("api.max_amount_fen", "must be between 1 and %d", int64(nkp.MaxFen))
	}
	if c.API.IdempotencyTTL < 24*time.Hour {
		e.add("api.idempotency_ttl", "must be at least 24h")
	}
	checkListen(e, "notify.listen", c.Notify.Listen)
	if u := checkURL(e, "notify.public_url", c.Notify.PublicURL, true); u != nil {
		if u.RawQuery != "" || u.ForceQuery {
			e.add("notify.public_url", "the upstream allows no query string in notify_url")
		}
		if p, err := strconv.Atoi(u.Port()); u.Port() != "" && (err != nil || p < 8000 || p > 9005) {
			e.add("notify.public_url", "the upstream only calls ports 8000-9005")
		}
	}
	if c.Notify.MaxBodyBytes <= 0 {
		e.add("notify.max_body_bytes", "must be positive")
	}
	for key, v := range map[string]int{
		"notify.max_header_bytes": c.Notify.MaxHeaderBytes, "notify.max_conns": c.Notify.MaxConns,
		"notify.max_conns_per_source": c.Notify.MaxConnsPerSource, "notify.burst_per_source": c.Notify.BurstPerSource,
		"notify.sources": c.Notify.Sources, "notify.concurrency": c.Notify.Concurrency,
		"notify.duplicate_cache": c.Notify.DuplicateCache, "notify.log_refusals": c.Notify.LogRefusals,
		"notify.duplicate_burst": c.Notify.DuplicateBurst,
	} {
		if v <= 0 {
			e.add(key, "must be positive")
		}
	}
	if c.Notify.RatePerSource <= 0 {
		e.add("notify.rate_per_source", "must be positive (requests per second)")
	}
	if c.Notify.DuplicateRate <= 0 {
		e.add("notify.duplicate_rate", "must be positive (acknowledgements per second)")
	}
	if c.Notify.MaxConnsPerSource > c.Notify.MaxConns {
		e.add("notify.max_conns_per_source", "must not exceed notify.max_conns")
	}
	positive(e, "notify.read_timeout", c.Notify.ReadTimeout)
	positive(e, "notify.queue_timeout", c.Notify.QueueTimeout)
	positive(e, "notify.rate_limit_delay", c.Notify.RateLimitDelay)
	positive(e, "notify.log_interval", c.Notify.LogInterval)
	if c.Webhook.URL != "" {
		checkURL(e, "webhook.url", c.Webhook.URL, true)
		if c.Webhook.Secret == "" {
			e.add("webhook.secret", "required when webhook.url is set (or webhook.secret_file)")
		}
	}
	positive(e, "webhook.timeout", c.Webhook.Timeout)
	if len(c.Webhook.Schedule) == 0 {
		e.add("webhook.schedule", "must list at least one delay")
	}
	for i, d := range c.Webhook.Schedule {
		if d <= 0 {
			e.add(fmt.Sprintf("webhook.schedule[%d]", i), "must be positive")
		}
	}
	if c.Webhook.Format != "json" && c.Webhook.Format != "form" {
		e.add("webhook.format", "must be json or form")
	}
	if c.Webhook.Concurrency <= 0 {
		e.add("webhook.concurrency", "must be positive")
	}
	if len(c.Requery.Schedule) == 0 {
		e.add("requery.schedule", "must list at least one delay")
	}
	for i, d := range c.Requery.Schedule {
		if d <= 0 {
			e.add(fmt.Sprintf("requery.schedule[%d]", i), "must be positive")
		}
	}
	positive(e, "requery.interval", c.Requery.Interval)
	switch c.Store.Driver {
	case "sqlite":
		required(e, "store.sqlite_path", c.Store.SQLitePath)
	case "postgres":
		required(e, "store.postgres_dsn", c.Store.PostgresDSN)
	default:
		e.add("store.driver", "must be sqlite or postgres")
	}
	enabled := 0
	for name, f := range map[string]FlowConfig{
		"wechat_jsapi": c.Plugins.WeChatJSAPI, "wechat_miniapp": c.Plugins.WeChatMiniApp, "alipay_native": c.Plugins.AlipayNative,
	} {
		if !f.Enabled {
			continue
		}
		enabled++
		if f.Path == "" && c.Plugins.Dir == "" {
			e.add("plugins."+name+".path", "required when plugins.dir is empty")
		}
		if f.SHA256 != "" && (len(f.SHA256) != 64 || strings.Trim(strings.ToLower(f.SHA256), "0123456789abcdef") != "") {
			e.add("plugins."+name+".sha256", "must be 64 hex digits")
		}
	}
	if enabled == 0 {
		e.add("plugins", "enable at least one flow")
	}
	checkListen(e, "admin.listen", c.Admin.Listen)
	switch c.Tracing.Exporter {
	case "none", "stdout":
	case "otlp":
		required(e, "tracing.otlp_endpoint", c.Tracing.OTLPEndpoint)
	default:
		e.add("tracing.exporter", "must be none, stdout or otlp")
	}
	if c.Tracing.SampleRatio < 0 || c.Tracing.SampleRatio > 1 {
		e.add("tracing.sample_ratio", "must be between 0 and 1")
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		e.add("log.level", "must be debug, info, warn or error")
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		e.add("log.format", "must be text or json")
	}
	checkListen(e, "sandbox.listen", c.Sandbox.Listen)
}

// SandboxKeysAllowed reports whether the sidecar may fall back to the
// sandbox's published development keys: only when no key is configured and
// the upstream is on a loopback address, so that a production deployment
// can never sign with a key everyone knows.
func (c *Config) SandboxKeysAllowed() bool {
	u, err := url.Parse(c.Upstream.BaseURL)
	if err != nil {
		return false
	}
	return isLoopback(u.Hostname())
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func required(e *Error, key, v string) {
	if strings.TrimSpace(v) == "" {
		e.add(key, "required")
	}
}

func positive(e *Error, key string, d time.Duration) {
	if d <= 0 {
		e.add(key, "must be a positive duration such as 10s")
	}
}

func checkURL(e *Error, key, v string, need bool) *url.URL {
	if v == "" {
		if need {
			e.add(key, "required")
		}
		return nil
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		e.add(key, "must be an http(s) URL")
		return nil
	}
	return u
}

func checkListen(e *Error, key, v string) {
	if _, port, err := net.SplitHostPort(v); err != nil || port == "" {
		e.add(key, "must be host:port")
	}
}
