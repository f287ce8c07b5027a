package storetest

import (
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/paysidecar/paysidecar/sidecar/store"
)

// checkout creates a checkout, changed by mods before it is stored.
func (f *fixture) checkout(mods ...func(*store.Checkout)) store.Checkout {
	f.t.Helper()
	id := f.next("chk")
	c := store.Checkout{
		ID:          id,
		MerchantID:  "6666000100000001",
		OutTradeNo:  "order-" + id,
		Flow:        "wechat-miniapp",
		AmountFen:   250,
		Description: "two cups of tea",
		Links:       json.RawMessage(`{"url_scheme":"weixin://dl/business/?t=abc"}`),
		ExpiresAt:   f.at(30 * time.Minute),
		CreatedAt:   f.now,
		UpdatedAt:   f.now,
	}
	for _, m := range mods {
		m(&c)
	}
	if err := f.s.CreateCheckout(f.ctx, &c); err != nil {
		f.t.Fatalf("CreateCheckout(%s): %v", c.ID, err)
	}
	return c
}

var checkoutTests = []test{
	{"CreateAndGet", func(f *fixture) {
		want := f.checkout()
		got, err := f.s.GetCheckout(f.ctx, want.ID)
		noErr(f.t, "GetCheckout", err)
		wantEqual(f.t, "GetCheckout", got, want)
		if !got.ClaimedAt.IsZero() || got.PaymentID != "" {
			f.t.Fatalf("a new checkout is claimed: %+v", got)
		}
		_, err = f.s.GetCheckout(f.ctx, "chk_missing")
		wantErr(f.t, "GetCheckout(missing)", err, store.ErrNotFound)
	}},
	{"CreateRefusesTakenKeysAndBadInput", func(f *fixture) {
		c := f.checkout()
		again := c
		again.ID = "chk_other"
		wantErr(f.t, "CreateCheckout(same out_trade_no)", f.s.CreateCheckout(f.ctx, &again), store.ErrConflict)
		sameID := c
		sameID.OutTradeNo = "another-order"
		wantErr(f.t, "CreateCheckout(same id)", f.s.CreateCheckout(f.ctx, &sameID), store.ErrConflict)
		// Another merchant may use the same order number.
		f.checkout(func(o *store.Checkout) { o.MerchantID = "6666000100000002"; o.OutTradeNo = c.OutTradeNo })
		for name, mod := range map[string]func(*store.Checkout){
			"no id":        func(o *store.Checkout) { o.ID = "" },
			"no merchant":  func(o *store.Checkout) { o.MerchantID = "" },
			"no flow":      func(o *store.Checkout) { o.Flow = "" },
			"zero amount":  func(o *store.Checkout) { o.AmountFen = 0 },
			"no expiry":    func(o *store.Checkout) { o.ExpiresAt = time.Time{} },
			"broken links": func(o *store.Checkout) { o.Links = json.RawMessage(`{`) },
		} {
			bad := store.Checkout{ID: "chk_bad", MerchantID: "m", OutTradeNo: "bad-" + name, Flow: "f", AmountFen: 1, ExpiresAt: f.at(time.Hour)}
			mod(&bad)
			wantErr(f.t, "CreateCheckout("+name+")", f.s.CreateCheckout(f.ctx, &bad), store.ErrInvalid)
		}
		_, err := f.s.GetCheckout(f.ctx, "chk_bad")
		wantErr(f.t, "GetCheckout(refused)", err, store.ErrNotFound)
	}},
	{"ClaimOnceThenPay", func(f *fixture) {
		c := f.checkout()
		got, err := f.s.ClaimCheckout(f.ctx, c.ID, f.at(time.Minute))
		noErr(f.t, "ClaimCheckout", err)
		if !got.ClaimedAt.Equal(f.at(time.Minute)) {
			f.t.Fatalf("ClaimedAt = %v, want %v", got.ClaimedAt, f.at(time.Minute))
		}
		again, err := f.s.ClaimCheckout(f.ctx, c.ID, f.at(2*time.Minute))
		wantErr(f.t, "ClaimCheckout(claimed)", err, store.ErrConflict)
		if !again.ClaimedAt.Equal(f.at(time.Minute)) {
			f.t.Fatalf("a refused claim answers ClaimedAt %v, want the first claim's %v", again.ClaimedAt, f.at(time.Minute))
		}
		paid, err := f.s.SetCheckoutPayment(f.ctx, c.ID, "pay_1", f.at(time.Minute))
		noErr(f.t, "SetCheckoutPayment", err)
		if paid.PaymentID != "pay_1" {
			f.t.Fatalf("PaymentID = %q", paid.PaymentID)
		}
		_, err = f.s.SetCheckoutPayment(f.ctx, c.ID, "pay_2", f.at(time.Minute))
		wantErr(f.t, "SetCheckoutPayment(another payment)", err, store.ErrConflict)
		// Releasing a checkout that became a payment changes nothing.
		noErr(f.t, "ReleaseCheckout", f.s.ReleaseCheckout(f.ctx, c.ID, got.ClaimedAt))
		after, err := f.s.GetCheckout(f.ctx, c.ID)
		noErr(f.t, "GetCheckout", err)
		if after.PaymentID != "pay_1" || after.ClaimedAt.IsZero() {
			f.t.Fatalf("after release of a paid checkout: %+v", after)
		}
	}},
	{"UnclaimedCannotTakePayment", func(f *fixture) {
		c := f.checkout()
		_, err := f.s.SetCheckoutPayment(f.ctx, c.ID, "pay_1", f.now)
		wantErr(f.t, "SetCheckoutPayment(unclaimed)", err, store.ErrConflict)
		_, err = f.s.SetCheckoutPayment(f.ctx, "chk_missing", "pay_1", f.now)
		wantErr(f.t, "SetCheckoutPayment(missing)", err, store.ErrNotFound)
	}},
	{"ReleaseReopens", func(f *fixture) {
		c := f.checkout()
		first, err := f.s.ClaimCheckout(f.ctx, c.ID, f.at(time.Second))
		noErr(f.t, "ClaimCheckout", err)
		// A release naming another claim changes nothing.
		noErr(f.t, "ReleaseCheckout(other claim)", f.s.ReleaseCheckout(f.ctx, c.ID, f.at(time.Hour)))
		_, err = f.s.ClaimCheckout(f.ctx, c.ID, f.at(2*time.Second))
		wantErr(f.t, "ClaimCheckout(still claimed)", err, store.ErrConflict)
		noErr(f.t, "ReleaseCheckout", f.s.ReleaseCheckout(f.ctx, c.ID, first.ClaimedAt))
		_, err = f.s.ClaimCheckout(f.ctx, c.ID, f.at(3*time.Second))
		noErr(f.t, "ClaimCheckout(released)", err)
	}},
	{"ExpiredCannotBeClaimed", func(f *fixture) {
		c := f.checkout()
		got, err := f.s.ClaimCheckout(f.ctx, c.ID, c.ExpiresAt)
		wantErr(f.t, "ClaimCheckout(at expiry)", err, store.ErrConflict)
		if !got.ClaimedAt.IsZero() || !got.ExpiresAt.Equal(c.ExpiresAt) {
			f.t.Fatalf("refused claim answers %+v", got)
		}
		_, err = f.s.ClaimCheckout(f.ctx, "chk_missing", f.now)
		wantErr(f.t, "ClaimCheckout(missing)", err, store.ErrNotFound)
	}},
	{"ConcurrentClaimsOneWins", func(f *fixture) {
		c := f.checkout()
		const n = 8
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				_, errs[i] = f.s.ClaimCheckout(f.ctx, c.ID, f.at(time.Duration(i+1)*time.Millisecond))
			})
		}
		wg.Wait()
		won := 0
		for i, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, store.ErrConflict):
				f.t.Fatalf("claim %d: %v", i, err)
			}
		}
		if won != 1 {
			f.t.Fatalf("%d of %d concurrent claims succeeded, want exactly 1", won, n)
		}
	}},
}
