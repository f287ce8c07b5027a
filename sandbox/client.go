package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// ControlClient is a typed client for the simulation controls under
// /_sandbox/ of a running sandbox.
type ControlClient struct {
	// BaseURL is where the sandbox listens, e.g. http://127.0.0.1:8090.
	BaseURL string
	// HTTP sends the requests; http.DefaultClient when nil.
	HTTP *http.Client
}

// do sends one control call and decodes its answer into out. A refusal is
// returned as *ControlError.
func (c *ControlClient) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("sandbox control %s: encode: %w", path, err)
		}
		body = bytes.NewReader(b)
	}
	u := strings.TrimRight(c.BaseURL, "/") + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return fmt.Errorf("sandbox control %s: %w", path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("sandbox control %s: %w", path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("sandbox control %s: read answer: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error *ControlError `json:"error"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Error != nil {
			return fmt.Errorf("sandbox control %s: %w", path, e.Error)
		}
		return fmt.Errorf("sandbox control %s: HTTP %d", path, resp.StatusCode)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("sandbox control %s: decode answer: %w", path, err)
	}
	return nil
}

func (f Filter) values() url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"huifu_id": f.HuifuID, "req_date": f.ReqDate, "req_seq_id": f.ReqSeqID, "nkp_seq_id": f.NkpSeqID, "kind": f.Kind} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v
}

// SettlePayment settles a processing payment as paid or failed; its
// notification follows.
func (c *ControlClient) SettlePayment(ctx context.Context, req SettleRequest) (Order, error) {
	var o Order
	err := c.do(ctx, http.MethodPost, ControlSettlePayment, nil, req, &o)
	return o, err
}

// SettleRefund settles a processing refund as succeeded or failed; its
// notification follows.
func (c *ControlClient) SettleRefund(ctx context.Context, req SettleRequest) (Refund, error) {
	var r Refund
	err := c.do(ctx, http.MethodPost, ControlSettleRefund, nil, req, &r)
	return r, err
}

// Orders lists the orders that match f, oldest first.
func (c *ControlClient) Orders(ctx context.Context, f Filter) ([]Order, error) {
	var out []Order
	err := c.do(ctx, http.MethodGet, ControlOrders, f.values(), nil, &out)
	return out, err
}

// Refunds lists the refunds that match f, oldest first.
func (c *ControlClient) Refunds(ctx context.Context, f Filter) ([]Refund, error) {
	var out []Refund
	err := c.do(ctx, http.MethodGet, ControlRefunds, f.values(), nil, &out)
	return out, err
}

// Notifications lists the notification deliveries that match f, oldest
// first. Filter.NkpSeqID is ignored here.
func (c *ControlClient) Notifications(ctx context.Context, f Filter) ([]NotificationRecord, error) {
	var out []NotificationRecord
	err := c.do(ctx, http.MethodGet, ControlNotifications, f.values(), nil, &out)
	return out, err
}

// AutoSettle returns the auto-settlement mode.
func (c *ControlClient) AutoSettle(ctx context.Context) (AutoSettle, error) {
	var a AutoSettle
	err := c.do(ctx, http.MethodGet, ControlAutoSettle, nil, nil, &a)
	return a, err
}

// SetAutoSettle replaces the auto-settlement mode; it applies to orders and
// refunds created afterwards.
func (c *ControlClient) SetAutoSettle(ctx context.Context, a AutoSettle) error {
	return c.do(ctx, http.MethodPut, ControlAutoSettle, nil, a, nil)
}

// Faults returns the fault injection in force.
func (c *ControlClient) Faults(ctx context.Context) (Faults, error) {
	var f Faults
	err := c.do(ctx, http.MethodGet, ControlFaults, nil, nil, &f)
	return f, err
}

// SetFaults replaces the fault injection; Faults{} turns it off.
func (c *ControlClient) SetFaults(ctx context.Context, f Faults) error {
	return c.do(ctx, http.MethodPut, ControlFaults, nil, f, nil)
}

// MintWeChatCode issues a WeChat code for user (DefaultWeChatUser when
// empty) of appID, as wx.login or the OAuth redirect would.
func (c *ControlClient) MintWeChatCode(ctx context.Context, appID, user string) (WeChatCode, error) {
	var out WeChatCode
	err := c.do(ctx, http.MethodPost, ControlWeChatCodes, nil, MintCodeRequest{AppID: appID, User: user}, &out)
	return out, err
}

// Stats counts what the sandbox received and did for huifuID, or for every
// merchant when huifuID is empty.
func (c *ControlClient) Stats(ctx context.Context, huifuID string) (Stats, error) {
	var st Stats
	q := url.Values{}
	if huifuID != "" {
		q.Set("huifu_id", huifuID)
	}
	err := c.do(ctx, http.MethodGet, ControlStats, q, nil, &st)
	return st, err
}

// SettleApplication decides a processing merchant application.
func (c *ControlClient) SettleApplication(ctx context.Context, applyNo, result string) (Application, error) {
	var a Application
	err := c.do(ctx, http.MethodPost, ControlSettleApplication, nil, SettleApplicationRequest{ApplyNo: applyNo, Result: result}, &a)
	return a, err
}

// Merchants lists the merchants the sandbox knows and their standing, or
// only huifuID's when it is not empty.
func (c *ControlClient) Merchants(ctx context.Context, huifuID string) ([]MerchantState, error) {
	var out []MerchantState
	q := url.Values{}
	if huifuID != "" {
		q.Set("huifu_id", huifuID)
	}
	err := c.do(ctx, http.MethodGet, ControlMerchants, q, nil, &out)
	return out, err
}

// SetMerchant registers a merchant or changes its standing (real-name
// authorization, onboarding, bound sub_appids, the sys_id it is under).
func (c *ControlClient) SetMerchant(ctx context.Context, req MerchantRequest) (MerchantState, error) {
	var out MerchantState
	err := c.do(ctx, http.MethodPost, ControlMerchants, nil, req, &out)
	return out, err
}

// ExpireWeChatTokens ends access tokens of an app early, so that the next
// call with one answers 42001 (or 40001 with Revoke). It answers how many
// tokens ended.
func (c *ControlClient) ExpireWeChatTokens(ctx context.Context, req ExpireTokensRequest) (int, error) {
	var out struct {
		Ended int `json:"ended"`
	}
	err := c.do(ctx, http.MethodPost, ControlWeChatTokens, nil, req, &out)
	return out.Ended, err
}

// SetWeChatApp changes an app's published pages, daily quotas or the back
// end of its stand-in mini-program.
func (c *ControlClient) SetWeChatApp(ctx context.Context, req WeChatAppRequest) (WeChatAppState, error) {
	var out WeChatAppState
	err := c.do(ctx, http.MethodPost, ControlWeChatApps, nil, req, &out)
	return out, err
}

// WeChatAuthorizations lists the visits of the OAuth authorize page, oldest
// first.
func (c *ControlClient) WeChatAuthorizations(ctx context.Context) ([]AuthorizeRecord, error) {
	var out []AuthorizeRecord
	err := c.do(ctx, http.MethodGet, ControlWeChatAuthorizations, nil, nil, &out)
	return out, err
}

// OpenWeChatLink tells where a URL Scheme, URL Link or plain scheme leads,
// as WeChat's app would open it; Launch.MiniProgramURL is the stand-in
// mini-program page to load next.
func (c *ControlClient) OpenWeChatLink(ctx context.Context, link string) (Launch, error) {
	var out Launch
	err := c.do(ctx, http.MethodGet, PathWeChatOpen, url.Values{"link": {link}, "format": {"json"}}, nil, &out)
	return out, err
}

// LaunchWeChatApp tells where a native app's launch of the mini-program
// with original id username at path (query included) leads;
// miniProgramType is 0 (release), 1 (develop) or 2 (trial).
func (c *ControlClient) LaunchWeChatApp(ctx context.Context, username, path string, miniProgramType int) (Launch, error) {
	var out Launch
	q := url.Values{"username": {username}, "path": {path}, "miniprogram_type": {strconv.Itoa(miniProgramType)}, "format": {"json"}}
	err := c.do(ctx, http.MethodGet, PathWeChatOpen, q, nil, &out)
	return out, err
}

// AddBillDifference injects a difference into the reconciliation files and
// returns every difference in force.
func (c *ControlClient) AddBillDifference(ctx context.Context, d BillDifference) ([]BillDifference, error) {
	var out []BillDifference
	err := c.do(ctx, http.MethodPost, ControlBillDifferences, nil, d, &out)
	return out, err
}

// BillDifferences lists the differences injected into the reconciliation
// files.
func (c *ControlClient) BillDifferences(ctx context.Context) ([]BillDifference, error) {
	var out []BillDifference
	err := c.do(ctx, http.MethodGet, ControlBillDifferences, nil, nil, &out)
	return out, err
}

// ClearBillDifferences removes every injected difference, so that the files
// again say exactly what the ledger holds.
func (c *ControlClient) ClearBillDifferences(ctx context.Context) error {
	return c.do(ctx, http.MethodDelete, ControlBillDifferences, nil, nil, nil)
}
