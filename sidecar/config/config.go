// Package config loads, defaults and validates the sidecar's settings.
//
// Settings come, in rising precedence, from the embedded defaults (which
// run the sidecar against the sandbox upstream with SQLite and every flow
// plugin in bin/plugins), an optional YAML file, and environment variables named
// PAYSIDECAR_<KEY>, where a double underscore separates levels:
// PAYSIDECAR_UPSTREAM__SYS_ID sets upstream.sys_id. Secrets are read from
// files named by *_file keys, so they need not appear in the file or the
// environment. Validation reports every problem at once, each with its key
// and, for a key set in the file, its line.
//
// Load performs every check the sidecar makes of its settings: what `run`
// accepts, `config check` accepts, and the reverse. A part that would
// refuse a setting when it starts (the webhook secret's length, say) has
// its check here too, so that a bad setting stops the sidecar before any
// process or listener starts.
//
// Kubernetes gives every container variables for each Service of its
// namespace (PAYSIDECAR_NOTIFY_PORT=tcp://… for a Service named
// paysidecar-notify). Variables of exactly that shape carry no setting and
// are ignored; any other PAYSIDECAR_ variable must name a setting.
package config

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/structs"
	"github.com/knadh/koanf/v2"

	"github.com/paysidecar/paysidecar/sdk/plugin"
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
	// Keys are the host keys flows may sign and verify with through the
	// host's services, by name, besides the built-in KeyMerchant and
	// KeyUpstream. A flow uses only those its plugins.flows entry grants.
	Keys    map[string]KeyConfig `koanf:"keys"`
	Admin   AdminConfig          `koanf:"admin"`
	Tracing TracingConfig        `koanf:"tracing"`
	Log     LogConfig            `koanf:"log"`
	Sandbox SandboxConfig        `koanf:"sandbox"`
	// Reconcile configures statements and the daily reconciliation.
	Reconcile ReconcileConfig `koanf:"reconcile"`
	// Merchants are the merchants a service provider trades for, by
	// huifu_id, besides upstream.merchant_id. When any is listed, a
	// request naming a merchant that is neither is refused
	// (unknown_merchant). Keys stay one per sys_id: every merchant's
	// requests are signed with upstream.private_key.
	Merchants map[string]MerchantConfig `koanf:"merchants"`

	// Hints are notes for the operator found while loading, such as an
	// old form of a setting that still works and what to write instead.
	// They are not settings.
	Hints []string `koanf:"-"`
}

// ReconcileConfig configures the upstream's statements and the daily
// reconciliation of the sidecar's books with them.
type ReconcileConfig struct {
	// Schedule is the Beijing time of day (HH:MM) from which the previous
	// day is reconciled, once the upstream's files are ready; empty turns
	// the schedule off.
	Schedule string `koanf:"schedule"`
	// RetryAfter is the wait after a scheduled run that failed.
	RetryAfter time.Duration `koanf:"retry_after"`
	// Dir keeps the downloaded statements; empty means "statements"
	// beside store.sqlite_path (a writable place in every deployment).
	Dir string `koanf:"dir"`
	// Slack widens the day the ledger is read for.
	Slack time.Duration `koanf:"slack"`
	// SortChunk bounds the statement records held in memory.
	SortChunk int `koanf:"sort_chunk"`
	// Settle queries the upstream for transactions the sidecar has no
	// final result for and applies the answer.
	Settle bool `koanf:"settle"`
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
	// MaxIdleConns is how many idle connections to the upstream are kept
	// for reuse; a concurrency above it opens new connections.
	MaxIdleConns int `koanf:"max_idle_conns"`
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
	// Concurrency bounds the signatures verified at once;
	// StoreConcurrency the verified notifications whose store work runs
	// at once (they mostly wait for a shared commit); QueueTimeout how
	// long one waits for its turn at either.
	Concurrency      int           `koanf:"concurrency"`
	StoreConcurrency int           `koanf:"store_concurrency"`
	QueueTimeout     time.Duration `koanf:"queue_timeout"`
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
	// RefundSlowInterval is how often a refund still unfinished after
	// RefundMaxAge is queried until it is final.
	RefundSlowInterval time.Duration `koanf:"refund_slow_interval"`
	CloseExpired       bool          `koanf:"close_expired"`
	Interval           time.Duration `koanf:"interval"`
}

// StoreConfig selects and configures the store.
type StoreConfig struct {
	// Driver is "sqlite" or "postgres".
	Driver          string `koanf:"driver"`
	SQLitePath      string `koanf:"sqlite_path"`
	PostgresDSN     string `koanf:"postgres_dsn"`
	PostgresDSNFile string `koanf:"postgres_dsn_file"`
	// PostgresMaxConns sizes the PostgreSQL connection pool, writers and
	// readers together; 0 means the store's default, the larger of 8 and
	// twice GOMAXPROCS.
	PostgresMaxConns int `koanf:"postgres_max_conns"`
}

// PluginsConfig configures the flow plugins. The host knows no flow by
// name: every executable file in Dir is a flow named after the file, and
// Flows configures flows by name, whether found in Dir or elsewhere.
type PluginsConfig struct {
	// Dir holds the plugin binaries, each named after its flow.
	Dir string `koanf:"dir"`
	// Flows configures flows by name. A name may be written with "_" for
	// "-" (as environment variables must), so plugins.flows.acme_pay
	// is the flow acme-pay.
	Flows map[string]FlowConfig `koanf:"flows"`
	// SocketDir holds a private directory per run of the host for its
	// plugins' sockets; empty means one of this user's in the system's
	// temporary directory. Directories of hosts that are gone are removed
	// at start.
	SocketDir string `koanf:"socket_dir"`
	// HealthInterval is how often each plugin's health check runs through
	// its flow service, and HealthTimeout how long it may take before the
	// plugin is deemed hung, killed and restarted.
	HealthInterval time.Duration `koanf:"health_interval"`
	HealthTimeout  time.Duration `koanf:"health_timeout"`
	// GoMaxProcs is the GOMAXPROCS each plugin process runs with; 0
	// leaves it to the Go runtime (the CPUs the process may use). A flow
	// plugin mostly waits for the host and the network, and with one
	// processor its goroutines hand work to each other on one thread
	// instead of waking another for every call: about a third less CPU
	// per call.
	GoMaxProcs int `koanf:"gomaxprocs"`
}

// FlowConfig configures one flow plugin.
type FlowConfig struct {
	// Enabled runs the flow; a flow is enabled unless set to false.
	Enabled *bool `koanf:"enabled"`
	// Path of the binary; Dir/<flow name> when empty.
	Path string `koanf:"path"`
	// SHA256 of the binary; computed at start and logged when empty.
	SHA256 string `koanf:"sha256"`
	// Settings are handed to the plugin, and only to it, after they are
	// checked against the settings schema the plugin declares.
	Settings map[string]string `koanf:"settings"`
	// SettingsFiles maps a setting name to a file holding its value,
	// for secrets such as app_secret.
	SettingsFiles map[string]string `koanf:"settings_files"`
	// Keys names the host keys the flow may sign and verify with through
	// the host's services (see Config.Keys).
	Keys []string `koanf:"keys"`
}

// MerchantConfig is one merchant of a service provider.
type MerchantConfig struct {
	// Flows holds the merchant's own settings per flow, e.g. its own
	// mini-program's app_id and app_secret; only settings a flow declares
	// per merchant may be given. A flow not named uses its own settings.
	Flows map[string]MerchantFlowConfig `koanf:"flows"`
}

// MerchantFlowConfig is a merchant's own settings of one flow.
type MerchantFlowConfig struct {
	Settings map[string]string `koanf:"settings"`
	// SettingsFiles maps a setting name to a file holding its value.
	SettingsFiles map[string]string `koanf:"settings_files"`
}

// KnownMerchant reports whether the sidecar trades for the merchant with
// huifu_id id: the default merchant, or one listed under merchants.
func (c Config) KnownMerchant(id string) bool {
	if id == c.Upstream.MerchantID {
		return true
	}
	_, ok := c.Merchants[id]
	return ok
}

// IsEnabled reports whether the flow is enabled: unless Enabled is false.
func (f FlowConfig) IsEnabled() bool { return f.Enabled == nil || *f.Enabled }

// KeyConfig is a key the host keeps for flows: a private key (which also
// verifies) or a public key, each inline or from a file, base64 DER or PEM.
type KeyConfig struct {
	PrivateKey     string `koanf:"private_key"`
	PrivateKeyFile string `koanf:"private_key_file"`
	PublicKey      string `koanf:"public_key"`
	PublicKeyFile  string `koanf:"public_key_file"`
}

// Names of the built-in host keys.
const (
	// KeyMerchant is the merchant's private key, upstream.private_key.
	KeyMerchant = "merchant"
	// KeyUpstream is the upstream's public key, upstream.public_key.
	KeyUpstream = "upstream"
)

// FlowName returns the flow a plugins.flows key names: the key with "_"
// written as "-".
func FlowName(key string) string { return strings.ReplaceAll(key, "_", "-") }

// AdminConfig configures the listener for /metrics, /healthz and /readyz.
type AdminConfig struct {
	Listen string `koanf:"listen"`
	// Pprof serves Go's runtime profiles under /debug/pprof/ on the admin
	// listener. Off by default.
	Pprof bool `koanf:"pprof"`
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

// Defaults returns the embedded defaults: the sandbox upstream on
// loopback, SQLite in ./.paysidecar, every plugin in ./bin/plugins. Flows
// need no settings against the sandbox: each plugin declares its own
// sandbox defaults.
func Defaults() Config {
	return Config{
		Profile: string(nkp.ProfileNKP),
		Upstream: UpstreamConfig{
			BaseURL:      "http://127.0.0.1:8900",
			SysID:        "6666000100000001",
			ProductID:    "PAYSIDECAR_SANDBOX",
			MerchantID:   "6666000100000001",
			Timeout:      15 * time.Second,
			MaxIdleConns: nkp.DefaultMaxIdleConns,
			// The merchant endpoints (nkp.MerchantPaths) are callable
			// without being listed.
			Passthrough: []string{nkp.PathFileQuery},
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
			StoreConcurrency:  64,
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
			Grace:              10 * time.Minute,
			RefundMaxAge:       24 * time.Hour,
			RefundSlowInterval: time.Hour,
			CloseExpired:       true,
			Interval:           time.Second,
		},
		Store: StoreConfig{
			Driver:     "sqlite",
			SQLitePath: ".paysidecar/paysidecar.db",
		},
		Plugins: PluginsConfig{Dir: "bin/plugins", HealthInterval: 10 * time.Second, HealthTimeout: 5 * time.Second, GoMaxProcs: 1},
		Admin:   AdminConfig{Listen: "127.0.0.1:9090"},
		Tracing: TracingConfig{Exporter: "none", SampleRatio: 1},
		Log:     LogConfig{Level: "info", Format: "text"},
		Sandbox: SandboxConfig{Listen: "127.0.0.1:8900", Seed: 1},
		Reconcile: ReconcileConfig{Schedule: "10:00", RetryAfter: 15 * time.Minute,
			Slack: 2 * time.Hour, SortChunk: 50_000, Settle: true},
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
	// File and Line locate the key in the YAML file when it was set there
	// (Line is 0 otherwise).
	File string
	Line int
	// Env names the environment variable that set the key, if one did.
	Env string
}

// String renders the problem as "file:line: key: message", or "key:
// message (from VAR)" for a setting from the environment.
func (p Problem) String() string {
	switch {
	case p.Line > 0:
		return fmt.Sprintf("%s:%d: %s: %s", p.File, p.Line, p.Key, p.Message)
	case p.Env != "":
		return fmt.Sprintf("%s (from %s): %s", p.Key, p.Env, p.Message)
	}
	return p.Key + ": " + p.Message
}

// Error implements error, one problem a line.
func (e *Error) Error() string {
	lines := make([]string, 0, len(e.Problems))
	for _, p := range e.Problems {
		lines = append(lines, p.String())
	}
	return "invalid configuration:\n  " + strings.Join(lines, "\n  ")
}

func (e *Error) add(key, format string, args ...any) {
	e.Problems = append(e.Problems, Problem{Key: key, Message: fmt.Sprintf(format, args...)})
}

// Load reads the defaults, then path (when not empty), then the
// environment given by environ (os.Environ when nil), reads secret files,
// and validates. Every problem found is reported in one *Error; a file that
// is not YAML is reported with its line and column.
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
	var src *yamlFile
	if path != "" {
		var err error
		if src, err = readYAML(path); err != nil {
			return Config{}, err
		}
		if err := k.Load(confmap.Provider(src.values, ""), nil); err != nil {
			return Config{}, fmt.Errorf("load %s: %w", path, err)
		}
	}
	if environ == nil {
		environ = os.Environ
	}
	fromEnv := map[string]string{} // key -> variable
	if err := k.Load(env.Provider(".", env.Opt{
		Prefix:      EnvPrefix,
		EnvironFunc: environ,
		TransformFunc: func(key, value string) (string, any) {
			rest := strings.TrimPrefix(key, EnvPrefix)
			if rest == "CONFIG" || serviceLink(rest, value) {
				// PAYSIDECAR_CONFIG names the file; service links
				// are Kubernetes' doing. Neither is a setting.
				return "", nil
			}
			name := strings.ReplaceAll(strings.ToLower(rest), "__", ".")
			fromEnv[name] = key
			if strings.Contains(value, ",") && listKeys[name] {
				return name, strings.Split(value, ",")
			}
			return name, value
		},
	}), nil); err != nil {
		return Config{}, fmt.Errorf("load environment: %w", err)
	}
	problems := &Error{}
	k, hints, err := normalizeFlows(k, problems)
	if err != nil {
		return Config{}, err
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
		decodeProblems(problems, err)
	} else {
		// Values that did not decode would only add confusing
		// problems of their own; validate what decoded cleanly.
		cfg.readSecretFiles(problems)
		cfg.validate(problems)
	}
	for _, key := range md.Unused {
		problems.add(key, "%s", unknownSetting(key, fromEnv[key]))
	}
	cfg.Hints = hints
	if len(problems.Problems) > 0 {
		problems.locate(src, fromEnv)
		return cfg, problems
	}
	return cfg, nil
}

// Validate checks cfg as Load does after reading it: the checks every part
// of the sidecar makes of its settings before it starts.
func (c Config) Validate() error {
	e := &Error{}
	c.validate(e)
	if len(e.Problems) > 0 {
		e.sort()
		return e
	}
	return nil
}

func (e *Error) sort() {
	sort.SliceStable(e.Problems, func(i, j int) bool { return e.Problems[i].Key < e.Problems[j].Key })
}

// locate sorts the problems and notes where each key was set: its line in
// the file, or the environment variable that overrode it.
func (e *Error) locate(src *yamlFile, fromEnv map[string]string) {
	e.sort()
	for i := range e.Problems {
		p := &e.Problems[i]
		if v := envFor(p.Key, fromEnv); v != "" {
			p.Env = v
			continue
		}
		if src != nil {
			p.File, p.Line = src.path, src.line(p.Key)
		}
	}
}

// envFor returns the variable that set key or one of its parents.
func envFor(key string, fromEnv map[string]string) string {
	key, _, _ = strings.Cut(key, "[")
	for k := key; k != ""; {
		if v, ok := fromEnv[k]; ok {
			return v
		}
		i := strings.LastIndex(k, ".")
		if i < 0 {
			break
		}
		k = k[:i]
	}
	return ""
}

// decodeProblems turns the decoder's errors into problems by key.
func decodeProblems(e *Error, err error) {
	var de *mapstructure.DecodeError
	switch {
	case errors.As(err, &de) && err == error(de):
		msg := errors.Unwrap(de).Error()
		var pe *mapstructure.ParseError
		if errors.As(de, &pe) {
			msg = fmt.Sprintf("%v is not a valid %s", pe.Value, pe.Expected.Type())
		}
		if strings.HasPrefix(msg, "time: invalid duration") {
			msg = "not a duration such as 10s"
		}
		e.add(de.Name(), "%s", msg)
	case err == nil:
	default:
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				decodeProblems(e, x)
			}
			return
		}
		if x := errors.Unwrap(err); x != nil {
			decodeProblems(e, x)
			return
		}
		e.add("", "%v", err)
	}
}

// k8sServiceLinks are the variables Kubernetes sets for a Service, less
// the PAYSIDECAR_ prefix, each with the kind of value it holds: NAME is the
// rest of the Service's name, upper-cased with "_" for "-" (empty for a
// Service named paysidecar).
var k8sServiceLinks = []struct {
	name  *regexp.Regexp
	value func(string) bool
}{
	{regexp.MustCompile(`^(?:[A-Z0-9_]*_)?SERVICE_HOST$`), isIP},                             // NAME_SERVICE_HOST=10.0.0.1
	{regexp.MustCompile(`^(?:[A-Z0-9_]*_)?SERVICE_PORT(?:_[A-Z0-9_]+)?$`), isPort},           // NAME_SERVICE_PORT[_PORTNAME]=8001
	{regexp.MustCompile(`^(?:[A-Z0-9_]*_)?PORT$`), isServiceURL},                             // NAME_PORT=tcp://10.0.0.1:8001
	{regexp.MustCompile(`^(?:[A-Z0-9_]*_)?PORT_[0-9]+_(?:TCP|UDP|SCTP)$`), isServiceURL},     // NAME_PORT_8001_TCP=tcp://…
	{regexp.MustCompile(`^(?:[A-Z0-9_]*_)?PORT_[0-9]+_(?:TCP|UDP|SCTP)_PROTO$`), isProtocol}, // …_PROTO=tcp
	{regexp.MustCompile(`^(?:[A-Z0-9_]*_)?PORT_[0-9]+_(?:TCP|UDP|SCTP)_PORT$`), isPort},      // …_PORT=8001
	{regexp.MustCompile(`^(?:[A-Z0-9_]*_)?PORT_[0-9]+_(?:TCP|UDP|SCTP)_ADDR$`), isIP},        // …_ADDR=10.0.0.1
}

var serviceURL = regexp.MustCompile(`^(?:tcp|udp|sctp)://\[?[0-9a-fA-F.:]+\]?:[0-9]+$`)

func isIP(v string) bool         { return net.ParseIP(v) != nil }
func isServiceURL(v string) bool { return serviceURL.MatchString(v) }
func isProtocol(v string) bool   { return v == "tcp" || v == "udp" || v == "sctp" }
func isPort(v string) bool {
	n, err := strconv.Atoi(v)
	return err == nil && n > 0 && n < 65536
}

// serviceLink reports whether PAYSIDECAR_<rest>=value is a Kubernetes
// service link variable rather than a setting: its name has one of the
// shapes and its value the kind Kubernetes gives that shape. Settings below
// the top level join their levels with "__", which no service link
// contains.
func serviceLink(rest, value string) bool {
	if strings.Contains(rest, "__") {
		return false
	}
	for _, l := range k8sServiceLinks {
		if l.name.MatchString(rest) && l.value(value) {
			return true
		}
	}
	return false
}

// unknownSetting explains an unknown key, suggesting the setting a
// variable meant when its levels were joined with "_" instead of "__".
func unknownSetting(key, envVar string) string {
	if envVar == "" {
		return "unknown setting"
	}
	parts := strings.Split(key, "_")
	for i := 1; i < len(parts); i++ {
		cand := strings.Join(parts[:i], "_") + "." + strings.Join(parts[i:], "_")
		if known(cand) {
			return fmt.Sprintf("unknown setting; levels are joined by \"__\": did you mean %s%s?",
				EnvPrefix, strings.ToUpper(strings.ReplaceAll(cand, ".", "__")))
		}
	}
	return "unknown setting"
}

// known reports whether key names a setting of Config.
func known(key string) bool {
	t := reflect.TypeFor[Config]()
	for _, part := range strings.Split(key, ".") {
		if t.Kind() != reflect.Struct {
			return false
		}
		found := false
		for i := range t.NumField() {
			if t.Field(i).Tag.Get("koanf") == part {
				t, found = t.Field(i).Type, true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
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
	for name, f := range c.Plugins.Flows {
		for setting, path := range f.SettingsFiles {
			var v string
			readSecret(e, "plugins.flows."+name+".settings_files."+setting, path, &v)
			if v != "" {
				if f.Settings == nil {
					f.Settings = map[string]string{}
				}
				f.Settings[setting] = v
			}
		}
		c.Plugins.Flows[name] = f
	}
	for id, mc := range c.Merchants {
		flows := make(map[string]MerchantFlowConfig, len(mc.Flows))
		for name, f := range mc.Flows {
			name = FlowName(name)
			settings := maps.Clone(f.Settings)
			if settings == nil {
				settings = map[string]string{}
			}
			for setting, path := range f.SettingsFiles {
				var v string
				readSecret(e, "merchants."+id+".flows."+name+".settings_files."+setting, path, &v)
				if v != "" {
					settings[setting] = v
				}
			}
			f.Settings = settings
			flows[name] = f
		}
		mc.Flows = flows
		c.Merchants[id] = mc
	}
	for name, kc := range c.Keys {
		readSecret(e, "keys."+name+".private_key_file", kc.PrivateKeyFile, &kc.PrivateKey)
		readSecret(e, "keys."+name+".public_key_file", kc.PublicKeyFile, &kc.PublicKey)
		c.Keys[name] = kc
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
	if c.Upstream.MaxIdleConns <= 0 {
		e.add("upstream.max_idle_conns", "must be positive")
	}
	for i, p := range c.Upstream.Passthrough {
		if !strings.HasPrefix(p, "/v2/") {
			e.add(fmt.Sprintf("upstream.passthrough[%d]", i), "must be an upstream path starting with /v2/")
		}
	}
	if checkListen(e, "api.listen", c.API.Listen) && c.API.Token == "" && !LoopbackListen(c.API.Listen) {
		e.add("api.token", "required when api.listen is not a loopback address: anyone who reaches %s could create payments and refunds (or api.token_file)", c.API.Listen)
	}
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
		"notify.store_concurrency": c.Notify.StoreConcurrency,
		"notify.duplicate_cache":   c.Notify.DuplicateCache, "notify.log_refusals": c.Notify.LogRefusals,
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
	if c.Webhook.Secret != "" {
		// The error says what is wrong with the secret, never what it is.
		if _, err := delivery.ParseSecret(c.Webhook.Secret); err != nil {
			e.add("webhook.secret", "%s", strings.TrimPrefix(err.Error(), delivery.ErrBadSecret.Error()+": "))
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
	positive(e, "requery.refund_slow_interval", c.Requery.RefundSlowInterval)
	switch c.Store.Driver {
	case "sqlite":
		required(e, "store.sqlite_path", c.Store.SQLitePath)
	case "postgres":
		required(e, "store.postgres_dsn", c.Store.PostgresDSN)
	default:
		e.add("store.driver", "must be sqlite or postgres")
	}
	if n := c.Store.PostgresMaxConns; n < 0 || n == 1 || n > 1000 {
		e.add("store.postgres_max_conns", "must be 0 (the default) or from 2 to 1000")
	}
	for id, mc := range c.Merchants {
		key := "merchants." + id
		if !merchantIDPattern.MatchString(id) {
			e.add(key, "a merchant is named by its huifu_id (digits)")
		}
		if id == c.Upstream.MerchantID {
			e.add(key, "is upstream.merchant_id; give the default merchant's settings in plugins.flows")
		}
		for name := range mc.Flows {
			if !plugin.ValidName(name) {
				e.add(key+".flows."+name, "a flow name is lower-case letters and digits in words joined by -")
			}
		}
	}
	positive(e, "plugins.health_interval", c.Plugins.HealthInterval)
	positive(e, "plugins.health_timeout", c.Plugins.HealthTimeout)
	if n := c.Plugins.GoMaxProcs; n < 0 || n > 1024 {
		e.add("plugins.gomaxprocs", "must be from 0 (the Go runtime's default) to 1024")
	}
	for name, f := range c.Plugins.Flows {
		key := "plugins.flows." + name
		if !plugin.ValidName(name) {
			e.add(key, "a flow name is lower-case letters and digits in words joined by -")
		}
		if !f.IsEnabled() {
			continue
		}
		if f.Path == "" && c.Plugins.Dir == "" {
			e.add(key+".path", "required when plugins.dir is empty")
		}
		if f.SHA256 != "" && (len(f.SHA256) != 64 || strings.Trim(strings.ToLower(f.SHA256), "0123456789abcdef") != "") {
			e.add(key+".sha256", "must be 64 hex digits")
		}
		for i, k := range f.Keys {
			if _, ok := c.Keys[k]; !ok && k != KeyMerchant && k != KeyUpstream {
				e.add(fmt.Sprintf("%s.keys[%d]", key, i), "no key %q: use %s, %s or a name under keys", k, KeyMerchant, KeyUpstream)
			}
		}
	}
	for name, kc := range c.Keys {
		key := "keys." + name
		if name == KeyMerchant || name == KeyUpstream {
			e.add(key, "%s is built in (upstream.private_key and upstream.public_key); name this key otherwise", name)
		}
		switch {
		case kc.PrivateKey != "":
			if _, err := nkp.ParsePrivateKey(kc.PrivateKey); err != nil {
				e.add(key+".private_key", "not an RSA private key in base64 DER or PEM")
			}
		case kc.PublicKey == "":
			e.add(key, "give private_key or public_key (or their _file forms)")
		}
		if kc.PublicKey != "" {
			if _, err := nkp.ParsePublicKey(kc.PublicKey); err != nil {
				e.add(key+".public_key", "not an RSA public key in base64 DER or PEM")
			}
		}
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
	if v := c.Reconcile.Schedule; v != "" {
		if _, err := time.Parse("15:04", v); err != nil {
			e.add("reconcile.schedule", "must be a Beijing time of day HH:MM, or empty for no schedule")
		}
	}
	positive(e, "reconcile.retry_after", c.Reconcile.RetryAfter)
	positive(e, "reconcile.slack", c.Reconcile.Slack)
	if c.Reconcile.SortChunk < 1000 {
		e.add("reconcile.sort_chunk", "must be at least 1000")
	}
}

// StatementsDir is where statements are kept: reconcile.dir, or
// "statements" beside store.sqlite_path when it is empty.
func (c *Config) StatementsDir() string {
	if c.Reconcile.Dir != "" {
		return c.Reconcile.Dir
	}
	return filepath.Join(filepath.Dir(c.Store.SQLitePath), "statements")
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

func checkListen(e *Error, key, v string) bool {
	if _, port, err := net.SplitHostPort(v); err != nil || port == "" {
		e.add(key, "must be host:port")
		return false
	}
	return true
}

// LoopbackListen reports whether a listen address binds to loopback only:
// an empty host or 0.0.0.0 binds every interface.
func LoopbackListen(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	return err == nil && host != "" && isLoopback(host)
}

// pluginsKeys are the keys of the plugins section; any other key whose
// value is a mapping is an old-form flow entry (plugins.<flow>: …).
var pluginsKeys = map[string]bool{"dir": true, "flows": true, "socket_dir": true, "health_interval": true, "health_timeout": true, "gomaxprocs": true}

// normalizeFlows returns the loaded settings with the plugins section in
// its one form:
// old-form entries plugins.<flow> (before flows were a map) move to
// plugins.flows.<flow>, with a hint saying what to write instead, and
// every flow key is written with "-", so that a file's
// plugins.flows.acme-pay and the environment's
// PAYSIDECAR_PLUGINS__FLOWS__ACME_PAY__… configure the same flow. An
// old-form entry and a new one for the same flow are merged, the new one
// winning; so are a name's "-" and "_" spellings, the "_" one (the
// environment's) winning. The mapping is generic: any flow, not a list of
// names.
func normalizeFlows(k *koanf.Koanf, e *Error) (*koanf.Koanf, []string, error) {
	raw := k.Raw()
	section, ok := raw["plugins"].(map[string]any)
	if !ok {
		return k, nil, nil
	}
	flows, _ := section["flows"].(map[string]any)
	if flows == nil {
		flows = map[string]any{}
	}
	var hints []string
	legacy := map[string]map[string]any{}
	for key, v := range section {
		if pluginsKeys[key] {
			continue
		}
		entry, ok := v.(map[string]any)
		if !ok {
			continue // reported as an unknown setting
		}
		name := FlowName(key)
		legacy[name] = entry
		delete(section, key)
		envName := strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
		hints = append(hints, fmt.Sprintf("plugins.%s is the old form of a flow's configuration and still works; write it as plugins.flows.%s (in the environment PAYSIDECAR_PLUGINS__FLOWS__%s__…)", key, name, envName))
	}
	out := map[string]any{}
	// Old form first, then the "-" spellings, then the "_" ones, each
	// merged over what came before.
	for name, entry := range legacy {
		out[name] = mergeMaps(nil, entry)
	}
	keys := make([]string, 0, len(flows))
	for key := range flows {
		keys = append(keys, key)
	}
	sort.Slice(keys, func(i, j int) bool {
		ui, uj := strings.Contains(keys[i], "_"), strings.Contains(keys[j], "_")
		if ui != uj {
			return uj
		}
		return keys[i] < keys[j]
	})
	for _, key := range keys {
		entry, ok := flows[key].(map[string]any)
		if !ok {
			e.add("plugins.flows."+key, "must be a mapping (path, sha256, settings, settings_files, keys, enabled)")
			continue
		}
		name := FlowName(key)
		prev, _ := out[name].(map[string]any)
		out[name] = mergeMaps(prev, entry)
	}
	section["flows"] = out
	sort.Strings(hints)
	nk := koanf.New(".")
	if err := nk.Load(confmap.Provider(raw, ""), nil); err != nil {
		return nil, nil, fmt.Errorf("load plugins: %w", err)
	}
	return nk, hints, nil
}

// mergeMaps returns a copy of dst with src merged over it, nested maps
// merged member by member.
func mergeMaps(dst, src map[string]any) map[string]any {
	out := make(map[string]any, len(dst)+len(src))
	for k, v := range dst {
		out[k] = v
	}
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			dm, _ := out[k].(map[string]any)
			out[k] = mergeMaps(dm, sm)
			continue
		}
		out[k] = v
	}
	return out
}

// merchantIDPattern is the shape of a huifu_id.
var merchantIDPattern = regexp.MustCompile(`^[0-9]{1,32}$`)
