package plugin

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"time"
)

// Flow is implemented by every channel flow plugin. The host calls Info
// and Configure after starting the plugin process; the other methods may be
// called concurrently afterwards. A flow embeds UnsupportedFlow to get the
// optional methods it does not implement.
type Flow interface {
	// Info describes the flow: its name, version, trade type,
	// capabilities, what the application must give and its settings.
	// It must not depend on the configuration.
	Info(ctx context.Context) (Info, error)

	// Configure hands the flow its settings, already checked against
	// the schema in Info and with defaults filled in, the agreed
	// contract version, the environment and the host's services. It
	// applies all of the configuration or none, returning an *Error that
	// names the offending key.
	Configure(ctx context.Context, c Config) error

	// ShapeOrder returns the trade type and the extra upstream data fields
	// (wx_data, alipay_data, risk_check_data, ...) of an order.
	ShapeOrder(ctx context.Context, in OrderInput) (OrderShape, error)

	// PayParams turns the verified upstream answer to the order (pay_info,
	// qr_code, ...) into the object the front end needs.
	PayParams(ctx context.Context, in PayParamsInput) (PayParams, error)

	// AuthorizeURL builds the OAuth authorize URL the buyer's browser is
	// sent to (CapAuthorizeURL).
	AuthorizeURL(ctx context.Context, in AuthorizeInput) (string, error)

	// ExchangeCode exchanges an OAuth or login code for the buyer's
	// identity (CapExchangeCode). Channel tokens and session keys never
	// leave the plugin.
	ExchangeCode(ctx context.Context, in ExchangeInput) (Identity, error)

	// Check reports whether the flow can serve. The host calls it
	// periodically through the same server as every other call and
	// restarts a plugin that fails or does not answer in time, so a flow
	// whose calls share state (a lock, a pool) should touch it here, and
	// should fail only when a restart would help.
	Check(ctx context.Context) error

	// LaunchLinks answers the links that open the flow's app, from a
	// browser or a native app, at the page that pays a checkout
	// (CapLaunchLinks). Channel access tokens never leave the plugin.
	LaunchLinks(ctx context.Context, in LaunchInput) (LaunchLinks, error)
}

// Capability names an optional part of the Flow interface a flow supports.
type Capability string

// The optional capabilities. Every flow supports ShapeOrder and PayParams.
const (
	// CapAuthorizeURL means AuthorizeURL is supported.
	CapAuthorizeURL Capability = "authorize_url"
	// CapExchangeCode means ExchangeCode is supported.
	CapExchangeCode Capability = "exchange_code"
	// CapLaunchLinks means LaunchLinks is supported: the flow can be
	// reached from outside its app, so checkouts can be made for it.
	CapLaunchLinks Capability = "launch_links"
)

// Info describes a flow plugin.
type Info struct {
	// Name is the flow's name, e.g. "wechat-jsapi": lower-case letters
	// and digits in words joined by "-". The host routes by it and
	// refuses a plugin whose name differs from the one it was configured
	// or discovered under.
	Name string
	// Version is the plugin's own version.
	Version string
	// TradeType is the upstream trade type the flow orders, e.g. "T_JSAPI"
	// (see package upstream).
	TradeType string
	// Capabilities lists the optional methods the flow supports.
	Capabilities []Capability
	// Buyer says whether an order of this flow needs the buyer's
	// identity; the host refuses an order without one before calling the
	// plugin when it is BuyerRequired.
	Buyer BuyerRule
	// APIVersions lists the contract versions the plugin speaks. The
	// server fills it in from the SDK when a flow leaves it empty.
	APIVersions []int
	// Settings declares the settings the flow accepts; the SDK refuses
	// any other and enforces their types before Configure.
	Settings Schema
}

// Supports reports whether the flow has capability c.
func (i Info) Supports(c Capability) bool { return slices.Contains(i.Capabilities, c) }

// BuyerRule says whether an order needs the buyer's identity.
type BuyerRule string

// The buyer rules.
const (
	// BuyerOptional means the flow uses a buyer's identity when given
	// one. It is what an empty BuyerRule means.
	BuyerOptional BuyerRule = "optional"
	// BuyerRequired means an order needs Buyer.OpenID or Buyer.Code.
	BuyerRequired BuyerRule = "required"
	// BuyerNone means the flow takes no buyer.
	BuyerNone BuyerRule = "none"
)

// Config is what Configure hands a flow.
type Config struct {
	// Settings are the flow's settings, checked against its schema.
	Settings Settings
	// APIVersion is the contract version host and plugin agreed on.
	APIVersion int
	// Environment says whether the host runs against its sandbox.
	Environment Environment
	// Host offers the host's services: signing and verifying with keys
	// the host keeps, and logging through the host's logger. It is never
	// nil in a plugin; its calls fail with CodeUnsupported when the host
	// offers no services.
	Host Host
	// HostKeys names the keys the host lets this flow use with Host.
	HostKeys []string
	// Logger logs through Host.Log; it is set in a plugin.
	Logger *slog.Logger
	// Merchants holds, per huifu_id, the complete settings of each
	// merchant of a service provider that has settings of its own: the
	// flow's settings with the merchant's per-merchant values in place
	// (SettingSpec.PerMerchant), checked against the schema like
	// Settings. A merchant not listed uses Settings. Calls name their
	// merchant (OrderInput.MerchantID and the others).
	Merchants map[string]Settings
}

// ForMerchant returns the settings of the merchant with huifu_id id:
// its own when it has any, Settings otherwise.
func (c Config) ForMerchant(id string) Settings {
	if s, ok := c.Merchants[id]; ok {
		return s
	}
	return c.Settings
}

// Buyer identifies who pays. For the WeChat flows it carries the buyer's
// openid (with the app id it belongs to when that is not the configured
// one) or an OAuth or login code to exchange for it.
type Buyer struct {
	// OpenID is the buyer's openid (WeChat) or buyer id (Alipay).
	OpenID string
	// AppID is the app the openid belongs to, when it is not the
	// configured one.
	AppID string
	// Code is an OAuth or mini-program login code to exchange.
	Code string
}

// OrderInput is what the host knows about an order before placing it.
type OrderInput struct {
	// MerchantID is the huifu_id of the merchant doing the trade.
	MerchantID string
	// PaymentID is the host's id of the payment.
	PaymentID string
	// OutTradeNo is the application's own order number.
	OutTradeNo string
	// AmountFen is the amount in fen.
	AmountFen int64
	// Description is the goods description.
	Description string
	// Buyer identifies who pays.
	Buyer Buyer
	// ClientIP is the buyer's IP address as the application saw it.
	ClientIP string
	// Metadata is the application's metadata of the payment.
	Metadata map[string]string
}

// OrderShape is the flow's part of an order request.
type OrderShape struct {
	// TradeType is the upstream trade type, e.g. "T_JSAPI".
	TradeType string
	// Fields are extra string fields placed into the order's data, e.g.
	// "wx_data" with a JSON string built by upstream.Encode.
	Fields map[string]string
	// Buyer is the buyer's identity the flow resolved, for example from a
	// code in OrderInput.Buyer; it is zero when the flow resolved none.
	Buyer Identity
	// PayParams, when not nil, says how the host builds this order's pay
	// parameters from the verified answer itself, sparing the create its
	// PayParams call (see PayRecipe). It must give what PayParams would.
	PayParams *PayRecipe
}

// PayParamsInput is the verified upstream answer to an order.
type PayParamsInput struct {
	// PaymentID is the host's id of the payment.
	PaymentID string
	// OutTradeNo is the application's own order number.
	OutTradeNo string
	// TradeType is the trade type of the order.
	TradeType string
	// Upstream holds the string fields of the verified answer: pay_info,
	// qr_code, nkp_seq_id, req_seq_id, ...
	Upstream map[string]string
	// MerchantID is the huifu_id of the merchant doing the trade.
	MerchantID string
}

// PayParams is what the front end needs to start the payment.
type PayParams struct {
	// Kind says which front end API the object is for, e.g. one of the
	// Kind constants of package upstream.
	Kind string
	// JSON is the object the host returns verbatim to the application.
	JSON []byte
}

// AuthorizeInput asks for an OAuth authorize URL.
type AuthorizeInput struct {
	// RedirectURI is where the channel sends the buyer back with a code.
	RedirectURI string
	// Scope is the OAuth scope, e.g. "snsapi_base".
	Scope string
	// State is echoed back with the code.
	State string
	// MerchantID is the huifu_id of the merchant whose app is meant;
	// empty means the flow's own settings.
	MerchantID string
}

// ExchangeInput asks for the identity behind a code.
type ExchangeInput struct {
	// Code is the OAuth or mini-program login code.
	Code string
	// AppID is the app the code was issued to, when it is not the
	// configured one.
	AppID string
	// MerchantID is the huifu_id of the merchant whose app is meant;
	// empty means the flow's own settings.
	MerchantID string
}

// LaunchInput asks for the links that open the page paying a checkout.
type LaunchInput struct {
	// MerchantID is the huifu_id of the merchant the checkout is for.
	MerchantID string
	// CheckoutID is the host's id of the checkout.
	CheckoutID string
	// OutTradeNo is the application's own order number.
	OutTradeNo string
	// ExpiresAt is when the checkout expires; links that expire should
	// not outlive it.
	ExpiresAt time.Time
	// Query is the query string the paying page must receive, naming the
	// checkout, e.g. "checkout=chk_…". Every link carries it.
	Query string
}

// LaunchLinks are the ways to open a flow's app at a page. A flow fills
// in those it has.
type LaunchLinks struct {
	// URLScheme is a URL Scheme (WeChat: weixin://dl/business/?t=…) and
	// URLSchemeExpiresAt its expiry (zero when unknown).
	URLScheme          string
	URLSchemeExpiresAt time.Time
	// URLLink is a URL Link (WeChat: https://wxaurl.cn/…) and
	// URLLinkExpiresAt its expiry.
	URLLink          string
	URLLinkExpiresAt time.Time
	// PlainScheme is a scheme that needs no API call (WeChat:
	// weixin://dl/business/?appid=…&path=…&query=…&env_version=…).
	PlainScheme string
	// App is what a native app needs to open the mini-program; nil when
	// the flow has none.
	App *AppLaunch
}

// AppLaunch is what a native app needs to open a mini-program
// (WXLaunchMiniProgram).
type AppLaunch struct {
	// UserName is the mini-program's original id, gh_….
	UserName string
	// Path is the page with its query.
	Path string
	// MiniProgramType is 0 release, 1 develop (test), 2 trial (preview).
	MiniProgramType int
}

// Identity is a buyer's identity as a channel knows it. It never carries
// access tokens or session keys.
type Identity struct {
	// OpenID is the buyer's id under AppID.
	OpenID string
	// UnionID is the buyer's id across the apps of one developer account,
	// when the channel reveals it.
	UnionID string
	// AppID is the app OpenID belongs to.
	AppID string
}

// IsZero reports whether id identifies nobody.
func (id Identity) IsZero() bool { return id == Identity{} }

// ValidName reports whether name is a valid flow name: lower-case letters
// and digits in words joined by single "-", at most 64 characters, as
// "wechat-jsapi". A plugin binary discovered by a host is named after its
// file, so the rule keeps names safe as file names and metric labels.
func ValidName(name string) bool {
	if name == "" || len(name) > 64 || name[0] == '-' || name[len(name)-1] == '-' || strings.Contains(name, "--") {
		return false
	}
	for _, c := range name {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
