package sandbox

import (
	"crypto/rsa"
	"fmt"
	"net/http"
	"time"

	"github.com/paysidecar/paysidecar/sidecar/nkp"
)

// Defaults applied by New to zero fields of Config.
const (
	// DefaultNotifyTimeout is how long one notification attempt may take,
	// as the upstream documents.
	DefaultNotifyTimeout = 5 * time.Second
	// DefaultNotifyRetries is how many times a failed notification is
	// retried, as the upstream documents (four attempts in total).
	DefaultNotifyRetries = 3
	// DefaultOrderTTL is how long an order without time_expire stays
	// payable, as WeChat's default of two hours.
	DefaultOrderTTL = 2 * time.Hour
	// DefaultReviewDelay is how long, by Config.Clock, a merchant
	// application stays in processing before it succeeds by itself.
	DefaultReviewDelay = 10 * time.Second
	// DefaultMaxBodyBytes bounds the size of an API request body.
	DefaultMaxBodyBytes = 256 << 10
	// DefaultReorderHold is the longest a notification picked for
	// reordering is held back when no other notification overtakes it.
	DefaultReorderHold = time.Second
	// MinCloseAge is the youngest an order may be to be closed.
	MinCloseAge = time.Minute
	// WeChatCodeTTL is how long a WeChat code can be exchanged.
	WeChatCodeTTL = 5 * time.Minute
)

// DefaultNotifyBackoff waits one second times the number of the attempt
// that failed (1 s, 2 s, 3 s). The upstream does not document its interval;
// tests set a shorter one through Config.NotifyBackoff.
func DefaultNotifyBackoff(attempt int) time.Duration {
	return time.Duration(attempt) * time.Second
}

// Config configures a Server. The zero value is usable: every key, merchant
// and WeChat app falls back to the fixed sandbox-only values of DevKeys.
type Config struct {
	// Profile is the field dialect of answers and notifications; "" means
	// nkp. Requests are accepted in both dialects.
	Profile nkp.Profile
	// UpstreamKey signs answers and notifications; nil means the dev
	// upstream key.
	UpstreamKey *rsa.PrivateKey
	// NextUpstreamKey is the key the control ControlSigningKey switches
	// to, to rehearse a key switch-over; nil means the dev next upstream
	// key.
	NextUpstreamKey *rsa.PrivateKey
	// WeChatKey signs paySign in pay_info; nil means the dev WeChat key.
	WeChatKey *rsa.PrivateKey
	// Merchants maps a sys_id to the public key that verifies its
	// requests; empty means DevSysID with the dev merchant key.
	Merchants map[string]*rsa.PublicKey
	// WeChatApps maps a WeChat app id to its app secret, for the OAuth and
	// jscode2session emulation; empty means the two dev apps
	// (DevWeChatAppID and DevMiniAppID).
	WeChatApps map[string]string
	// DefaultWeChatAppID is the appId of pay_info when wx_data carries no
	// sub_appid; "" means DevWeChatAppID.
	DefaultWeChatAppID string
	// WeChatOriginalIDs maps a mini-program's original id (gh_…), which a
	// native app launches it by, to its app id; empty means
	// DevMiniAppOriginalID for DevMiniAppID.
	WeChatOriginalIDs map[string]string
	// PublicURL is the base URL the sandbox is reachable at, used in
	// qr_code and download_url. "" means the scheme and Host of each
	// request.
	PublicURL string
	// Seed makes generated ids and fault injection deterministic.
	Seed int64
	// StrictNotifyURL enforces the upstream's notify_url rules: an
	// explicit port in 8000-9005 and no query string. Without it any http
	// or https URL is accepted, so tests can listen on port 0.
	StrictNotifyURL bool
	// Clock tells the time; nil means time.Now. Order expiry, close age,
	// review delays and WeChat code expiry follow it; timers that pace
	// real work (notification retries, auto-settlement) use real time.
	Clock func() time.Time
	// NotifyTimeout bounds one notification attempt; 0 means
	// DefaultNotifyTimeout.
	NotifyTimeout time.Duration
	// NotifyRetries is the number of retries after a failed first attempt;
	// 0 means DefaultNotifyRetries and a negative value means none.
	NotifyRetries int
	// NotifyBackoff returns the delay after failed attempt number attempt
	// (1-based); nil means DefaultNotifyBackoff.
	NotifyBackoff func(attempt int) time.Duration
	// HTTPClient sends notifications; nil means a client with its own
	// transport. Redirects are never followed, whatever the client says:
	// the sandbox uses a copy whose CheckRedirect stops at the first
	// answer.
	HTTPClient *http.Client
	// ReviewDelay is how long a merchant application stays processing;
	// 0 means DefaultReviewDelay.
	ReviewDelay time.Duration
	// MaxBodyBytes bounds an API request body; 0 means
	// DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// AutoSettle is the initial auto-settlement mode; it can be changed at
	// run time through /_sandbox/autosettle.
	AutoSettle AutoSettle
	// Faults is the initial fault injection; it can be changed at run time
	// through /_sandbox/faults.
	Faults Faults
	// Rules tunes the refusals the sandbox shares with the real service.
	Rules Rules
	// StateFile, when not empty, keeps the ledger (orders, refunds,
	// merchants, codes, ids) in this file across restarts: loaded by New,
	// written after changes and by Close (see state.go).
	StateFile string
}

// AutoSettle settles payments and refunds by themselves after a delay, for
// benchmarks and demos. Rates are probabilities in [0, 1], drawn from the
// seed per order, so the same seed fails the same orders.
type AutoSettle struct {
	// Pay settles every new payment PayAfterMS milliseconds after it was
	// ordered.
	Pay bool `json:"pay"`
	// PayAfterMS is the delay before a payment is settled.
	PayAfterMS int64 `json:"pay_after_ms"`
	// PayFailRate is the share of auto-settled payments that fail.
	PayFailRate float64 `json:"pay_fail_rate"`
	// Refund settles every new refund RefundAfterMS milliseconds after it
	// was requested.
	Refund bool `json:"refund"`
	// RefundAfterMS is the delay before a refund is settled.
	RefundAfterMS int64 `json:"refund_after_ms"`
	// RefundFailRate is the share of auto-settled refunds that fail.
	RefundFailRate float64 `json:"refund_fail_rate"`
}

// Validate reports a rate outside [0, 1] or a negative delay.
func (a AutoSettle) Validate() error {
	if err := checkRates(map[string]float64{"pay_fail_rate": a.PayFailRate, "refund_fail_rate": a.RefundFailRate}); err != nil {
		return err
	}
	if a.PayAfterMS < 0 || a.RefundAfterMS < 0 {
		return fmt.Errorf("auto-settle delays must not be negative")
	}
	return nil
}

// Faults is the fault injection of a Server.
type Faults struct {
	// Notify disturbs asynchronous notifications.
	Notify NotifyFaults `json:"notify"`
	// API disturbs synchronous answers under /v2/.
	API APIFaults `json:"api"`
}

// NotifyFaults disturbs asynchronous notifications. Each rate is the
// probability in [0, 1] that a notification gets the fault; the draw is a
// hash of the seed, the fault and the notification's identity (kind,
// huifu_id, req_date, req_seq_id), so it does not depend on timing.
type NotifyFaults struct {
	// LatencyMS delays every notification before its first attempt.
	LatencyMS int64 `json:"latency_ms,omitempty"`
	// DropRate: the notification is never sent.
	DropRate float64 `json:"drop_rate,omitempty"`
	// DuplicateRate: the notification is sent twice, as two deliveries.
	DuplicateRate float64 `json:"duplicate_rate,omitempty"`
	// ReorderRate: the notification is held back until the next
	// notification has been attempted (or ReorderHoldMS passed), so that
	// it arrives after a later one.
	ReorderRate float64 `json:"reorder_rate,omitempty"`
	// ReorderHoldMS is the longest hold; 0 means DefaultReorderHold.
	ReorderHoldMS int64 `json:"reorder_hold_ms,omitempty"`
	// TamperRate: resp_data is altered after signing (the amount is raised
	// by one yuan), so its signature no longer verifies.
	TamperRate float64 `json:"tamper_rate,omitempty"`
	// ErrorCodeRate: the unsigned outer resp_code says 99999999 while the
	// signed resp_data is unchanged; a receiver must go by resp_data.
	ErrorCodeRate float64 `json:"error_code_rate,omitempty"`
}

// Validate reports a rate outside [0, 1] or a negative duration.
func (f NotifyFaults) Validate() error {
	if f.LatencyMS < 0 || f.ReorderHoldMS < 0 {
		return fmt.Errorf("notification fault durations must not be negative")
	}
	return checkRates(map[string]float64{
		"drop_rate": f.DropRate, "duplicate_rate": f.DuplicateRate, "reorder_rate": f.ReorderRate,
		"tamper_rate": f.TamperRate, "error_code_rate": f.ErrorCodeRate,
	})
}

// APIFaults disturbs synchronous answers of authenticated /v2/ calls. Each
// rate is a probability in [0, 1]; the n-th authenticated call draws from a
// hash of the seed, the fault and n, so the same seed and the same calls
// give the same sequence of faults.
type APIFaults struct {
	// LatencyMS delays every answer.
	LatencyMS int64 `json:"latency_ms,omitempty"`
	// Status500Rate: the answer is HTTP 500 with the upstream's error
	// shape.
	Status500Rate float64 `json:"status_500_rate,omitempty"`
	// BadSignatureRate: the answer's sign does not verify.
	BadSignatureRate float64 `json:"bad_signature_rate,omitempty"`
	// UnsignedRate: the answer carries no sign.
	UnsignedRate float64 `json:"unsigned_rate,omitempty"`
	// BeforeProcessing makes a 500 happen before the call takes effect;
	// by default the call takes effect and only its answer is lost, as
	// when the upstream fails after committing.
	BeforeProcessing bool `json:"before_processing,omitempty"`
	// Paths limits the faults to these paths; empty means every path.
	Paths []string `json:"paths,omitempty"`
}

// Validate reports a rate outside [0, 1] or a negative duration.
func (f APIFaults) Validate() error {
	if f.LatencyMS < 0 {
		return fmt.Errorf("api latency_ms must not be negative")
	}
	return checkRates(map[string]float64{
		"status_500_rate": f.Status500Rate, "bad_signature_rate": f.BadSignatureRate, "unsigned_rate": f.UnsignedRate,
	})
}

// Validate checks both parts.
func (f Faults) Validate() error {
	if err := f.Notify.Validate(); err != nil {
		return err
	}
	return f.API.Validate()
}

func checkRates(rates map[string]float64) error {
	for name, r := range rates {
		if r < 0 || r > 1 || r != r {
			return fmt.Errorf("%s must be between 0 and 1", name)
		}
	}
	return nil
}

// withDefaults returns cfg with every zero field filled in.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.Profile == "" {
		cfg.Profile = nkp.ProfileNKP
	}
	if err := cfg.Profile.Validate(); err != nil {
		return cfg, fmt.Errorf("sandbox config: %w", err)
	}
	if cfg.UpstreamKey == nil || cfg.NextUpstreamKey == nil || cfg.WeChatKey == nil || len(cfg.Merchants) == 0 {
		dev, err := DevKeys()
		if err != nil {
			return cfg, err
		}
		if cfg.UpstreamKey == nil {
			cfg.UpstreamKey = dev.Upstream.Private
		}
		if cfg.NextUpstreamKey == nil {
			cfg.NextUpstreamKey = dev.UpstreamNext.Private
		}
		if cfg.WeChatKey == nil {
			cfg.WeChatKey = dev.WeChat.Private
		}
		if len(cfg.Merchants) == 0 {
			cfg.Merchants = map[string]*rsa.PublicKey{DevSysID: dev.Merchant.Public}
		}
	}
	for id, k := range cfg.Merchants {
		if k == nil {
			return cfg, fmt.Errorf("sandbox config: merchant %q has no public key", id)
		}
	}
	if len(cfg.WeChatApps) == 0 {
		cfg.WeChatApps = map[string]string{DevWeChatAppID: DevWeChatSecret, DevMiniAppID: DevMiniAppSecret}
	}
	if len(cfg.WeChatOriginalIDs) == 0 {
		cfg.WeChatOriginalIDs = map[string]string{DevMiniAppOriginalID: DevMiniAppID}
	}
	if cfg.DefaultWeChatAppID == "" {
		cfg.DefaultWeChatAppID = DevWeChatAppID
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.NotifyTimeout <= 0 {
		cfg.NotifyTimeout = DefaultNotifyTimeout
	}
	switch {
	case cfg.NotifyRetries == 0:
		cfg.NotifyRetries = DefaultNotifyRetries
	case cfg.NotifyRetries < 0:
		cfg.NotifyRetries = 0
	}
	if cfg.NotifyBackoff == nil {
		cfg.NotifyBackoff = DefaultNotifyBackoff
	}
	if cfg.ReviewDelay <= 0 {
		cfg.ReviewDelay = DefaultReviewDelay
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if err := cfg.AutoSettle.Validate(); err != nil {
		return cfg, fmt.Errorf("sandbox config: %w", err)
	}
	if err := cfg.Faults.Validate(); err != nil {
		return cfg, fmt.Errorf("sandbox config: %w", err)
	}
	return cfg, nil
}
