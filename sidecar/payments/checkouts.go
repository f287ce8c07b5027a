package payments

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"time"

	"github.com/paysidecar/paysidecar/sdk/client"
	"github.com/paysidecar/paysidecar/sdk/plugin"
	"github.com/paysidecar/paysidecar/sidecar/store"
)

// The codes of a checkout's refusals.
const (
	// CodeCheckoutPaid: a buyer already began to pay the checkout; it is
	// paid at most once.
	CodeCheckoutPaid Code = "checkout_paid"
	// CodeCheckoutExpired: the checkout was not paid before it expired.
	CodeCheckoutExpired Code = "checkout_expired"
)

// Bounds of a checkout.
const (
	defaultCheckoutExpiry = 30 * time.Minute
	// CheckoutQueryKey is the member of the paying page's launch query
	// that names the checkout.
	CheckoutQueryKey = "checkout"
)

// CheckoutMetadataKey is the metadata key of a payment placed for a
// checkout that names the checkout, so that its webhooks do too.
const CheckoutMetadataKey = "checkout_id"

// checkoutFlowBuyer stands in for the buyer while a checkout request is
// checked like a payment's: a checkout has no buyer until it is paid.
var checkoutFlowBuyer = &client.Buyer{Code: "checkout"}

// CreateCheckoutInput is a decoded request to create a checkout.
type CreateCheckoutInput struct {
	Request client.CreateCheckoutRequest
	// AmountGiven reports whether the request named amount_fen at all.
	AmountGiven bool
}

// CreateCheckout checks the request like a payment's, has the flow plugin
// build the links that open its paying page with the checkout's query,
// and stores the checkout. Nothing is sent upstream: the order is placed
// when the checkout is paid. out_trade_no must be free among the
// merchant's checkouts and payments.
func (s *Service) CreateCheckout(ctx context.Context, in CreateCheckoutInput) (client.Checkout, error) {
	req := in.Request
	if req.Flow == "" {
		if err := s.CheckFlow(&req.Flow, plugin.CapLaunchLinks); err != nil {
			return client.Checkout{}, err
		}
	}
	expiresIn := time.Duration(req.ExpiresInSeconds) * time.Second
	if req.ExpiresInSeconds == 0 {
		expiresIn = defaultCheckoutExpiry
	}
	pr := client.CreatePaymentRequest{
		Flow: req.Flow, OutTradeNo: req.OutTradeNo, AmountFen: req.AmountFen, Description: req.Description,
		Buyer: checkoutFlowBuyer, ExpiresInSeconds: int64(expiresIn / time.Second), MerchantID: req.MerchantID,
	}
	if err := s.validatePayment(&pr, in.AmountGiven); err != nil {
		return client.Checkout{}, err
	}
	if !s.flowSupports(pr.Flow, plugin.CapLaunchLinks) {
		return client.Checkout{}, errorf(CodeUnsupported, "flow", "flow %s cannot be opened from outside its app; checkouts need a flow with launch links", pr.Flow)
	}
	if _, err := s.st.GetPaymentByOutTradeNo(ctx, pr.MerchantID, pr.OutTradeNo); err == nil {
		return client.Checkout{}, errorf(CodeOutTradeNoConflict, "out_trade_no", "out_trade_no %q is already used by a payment", pr.OutTradeNo)
	} else if !errors.Is(err, store.ErrNotFound) {
		return client.Checkout{}, internal("look up out_trade_no", err)
	}
	flow, err := s.flows.Flow(pr.Flow)
	if err != nil {
		return client.Checkout{}, PluginError(err)
	}
	now := s.now()
	c := store.Checkout{
		ID: newID("chk"), MerchantID: pr.MerchantID, OutTradeNo: pr.OutTradeNo, Flow: pr.Flow,
		AmountFen: pr.AmountFen, Description: pr.Description, ExpiresAt: now.Add(expiresIn).Truncate(time.Second),
		CreatedAt: now, UpdatedAt: now,
	}
	links, err := flow.LaunchLinks(ctx, plugin.LaunchInput{
		MerchantID: c.MerchantID, CheckoutID: c.ID, OutTradeNo: c.OutTradeNo, ExpiresAt: c.ExpiresAt, Query: checkoutQuery(c.ID),
	})
	if err != nil {
		return client.Checkout{}, PluginError(err)
	}
	if c.Links, err = json.Marshal(linksToClient(links)); err != nil {
		return client.Checkout{}, internal("encode links", err)
	}
	if err := s.st.CreateCheckout(ctx, &c); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return client.Checkout{}, errorf(CodeOutTradeNoConflict, "out_trade_no", "out_trade_no %q is already used by a checkout", c.OutTradeNo)
		}
		return client.Checkout{}, internal("store checkout", err)
	}
	return s.checkoutToClient(c, nil), nil
}

// flowSupports reports whether the running flow name has capability c.
func (s *Service) flowSupports(name string, c plugin.Capability) bool {
	for _, i := range s.flows.Infos() {
		if i.Name == name {
			return i.Supports(c)
		}
	}
	return false
}

func checkoutQuery(id string) string {
	return url.Values{CheckoutQueryKey: {id}}.Encode()
}

func linksToClient(l plugin.LaunchLinks) client.CheckoutLinks {
	at := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		t = t.UTC()
		return &t
	}
	out := client.CheckoutLinks{
		URLScheme: l.URLScheme, URLSchemeExpiresAt: at(l.URLSchemeExpiresAt),
		URLLink: l.URLLink, URLLinkExpiresAt: at(l.URLLinkExpiresAt),
		PlainScheme: l.PlainScheme,
	}
	if l.App != nil {
		out.App = &client.AppLaunch{UserName: l.App.UserName, Path: l.App.Path, MiniProgramType: l.App.MiniProgramType}
	}
	return out
}

func (s *Service) checkoutToClient(c store.Checkout, p *client.Payment) client.Checkout {
	out := client.Checkout{
		Object: "checkout", ID: c.ID, Flow: c.Flow, MerchantID: c.MerchantID, OutTradeNo: c.OutTradeNo,
		AmountFen: c.AmountFen, Description: c.Description, Query: checkoutQuery(c.ID),
		PaymentID: c.PaymentID, Payment: p, ExpiresAt: c.ExpiresAt.UTC(), CreatedAt: c.CreatedAt.UTC(),
	}
	_ = json.Unmarshal(c.Links, &out.Links)
	switch {
	case !c.ClaimedAt.IsZero():
		out.Status = "used"
	case !s.now().Before(c.ExpiresAt):
		out.Status = "expired"
	default:
		out.Status = "open"
	}
	return out
}

// GetCheckout returns the checkout with the id and, once it was paid, its
// payment as it stands (refreshed like Get).
func (s *Service) GetCheckout(ctx context.Context, id string) (client.Checkout, error) {
	c, err := s.st.GetCheckout(ctx, id)
	if err != nil {
		return client.Checkout{}, notFound(err, "checkout")
	}
	if c.PaymentID == "" && !c.ClaimedAt.IsZero() {
		// Paid, but the payment's id was not recorded (the sidecar
		// stopped in between): the out_trade_no finds it.
		if p, err := s.st.GetPaymentByOutTradeNo(ctx, c.MerchantID, c.OutTradeNo); err == nil && p.RequestHash == checkoutHash(c.ID) {
			c.PaymentID = p.ID
		}
	}
	var pay *client.Payment
	if c.PaymentID != "" {
		p, err := s.Get(ctx, c.PaymentID)
		if err != nil {
			return client.Checkout{}, err
		}
		pay = &p
	}
	return s.checkoutToClient(c, pay), nil
}

// PayCheckoutInput is a decoded request to pay a checkout.
type PayCheckoutInput struct {
	CheckoutID string
	Request    client.PayCheckoutRequest
}

// PayCheckout pays a checkout with the buyer's login code: it claims the
// checkout (of concurrent attempts, across replicas, one wins), places
// the order as Create does, with the code exchanged by the flow plugin,
// and records the payment on the checkout; from then on it is an
// ordinary payment, whose metadata names the checkout (checkout_id). A checkout already claimed is refused with
// CodeCheckoutPaid, an expired one with CodeCheckoutExpired. An attempt
// that stored no payment (a bad code, a plugin that failed) releases the
// claim, so that the buyer may try again.
func (s *Service) PayCheckout(ctx context.Context, in PayCheckoutInput) (Outcome, error) {
	req := in.Request
	if req.Code == "" {
		return Outcome{}, errorf(CodeMissingField, "code", "code is required: the buyer's login code")
	}
	if len(req.Code) > maxBuyerFieldLen {
		return Outcome{}, errorf(CodeInvalidField, "code", "code takes at most %d bytes", maxBuyerFieldLen)
	}
	if err := CheckText("code", req.Code); err != nil {
		return Outcome{}, err
	}
	c, err := s.st.GetCheckout(ctx, in.CheckoutID)
	if err != nil {
		return Outcome{}, notFound(err, "checkout")
	}
	now := s.now()
	claimed, err := s.st.ClaimCheckout(ctx, c.ID, now)
	if err != nil {
		switch {
		case errors.Is(err, store.ErrConflict) && !claimed.ClaimedAt.IsZero():
			return Outcome{}, errorf(CodeCheckoutPaid, "", "checkout %s is already paid or being paid; a checkout is paid once", c.ID)
		case errors.Is(err, store.ErrConflict):
			return Outcome{}, errorf(CodeCheckoutExpired, "", "checkout %s expired at %s", c.ID, c.ExpiresAt.UTC().Format(time.RFC3339))
		}
		return Outcome{}, internal("claim checkout", err)
	}
	remaining := int64(c.ExpiresAt.Sub(now) / time.Second)
	remaining = max(remaining, int64(minExpiry/time.Second))
	pr := client.CreatePaymentRequest{
		Flow: c.Flow, OutTradeNo: c.OutTradeNo, AmountFen: c.AmountFen, Description: c.Description,
		Buyer: &client.Buyer{Code: req.Code}, ExpiresInSeconds: remaining, ClientIP: req.ClientIP, MerchantID: c.MerchantID,
		Metadata: map[string]string{CheckoutMetadataKey: c.ID},
	}
	hash := checkoutHash(c.ID)
	out, err := s.Create(ctx, CreateInput{Request: pr, AmountGiven: true, Hash: hash})
	bg := context.WithoutCancel(ctx)
	paymentID := out.Payment.ID
	if err != nil {
		p, gerr := s.st.GetPaymentByOutTradeNo(bg, c.MerchantID, c.OutTradeNo)
		if gerr == nil && p.RequestHash != hash {
			// The application placed a payment of its own under the
			// checkout's out_trade_no: it is not the checkout's.
			gerr = store.ErrNotFound
		}
		switch {
		case errors.Is(gerr, store.ErrNotFound):
			if rerr := s.st.ReleaseCheckout(bg, c.ID, claimed.ClaimedAt); rerr != nil {
				s.tel.Logger.ErrorContext(ctx, "release a checkout after a failed payment", "checkout", c.ID, "err", rerr)
			}
			return Outcome{}, err
		case gerr != nil:
			return Outcome{}, err
		}
		paymentID = p.ID
	}
	if _, serr := s.st.SetCheckoutPayment(bg, c.ID, paymentID, s.now()); serr != nil {
		s.tel.Logger.ErrorContext(ctx, "record a checkout's payment", "checkout", c.ID, "payment", paymentID, "err", serr)
	}
	return out, err
}

// checkoutHash is the request hash of the payment a checkout becomes, which
// tells it from a payment the application placed under the same
// out_trade_no.
func checkoutHash(id string) string { return "checkout:" + id }
