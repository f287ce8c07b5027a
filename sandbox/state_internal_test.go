package sandbox

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"github.com/paysidecar/paysidecar/sdk/upstream"
	"github.com/paysidecar/paysidecar/sidecar/nkp"
)

// TestLedgerIsPersistable fails when the ledger reaches a type the state
// file cannot hold (a channel, a function, an interface): keep such a
// field out of the ledger, or tag it `state:"-"`.
func TestLedgerIsPersistable(t *testing.T) {
	if err := persistable(reflect.TypeFor[ledger](), "ledger", map[reflect.Type]bool{}); err != nil {
		t.Fatal(err)
	}
	for _, typ := range []reflect.Type{
		reflect.TypeFor[struct{ OK, Fn func() }](),
		reflect.TypeFor[struct{ Ch map[string]chan int }](),
		reflect.TypeFor[struct{ Any []any }](),
	} {
		if err := persistable(typ, "bad", map[reflect.Type]bool{}); err == nil {
			t.Errorf("%s passed", typ)
		}
	}
}

// TestLedgerRoundTrip encodes a ledger with shared pointers, maps keyed by
// structs, times and nested values, and checks that decoding gives the
// same ledger with the same sharing.
func TestLedgerRoundTrip(t *testing.T) {
	l := newLedger()
	now := time.Date(2025, 6, 15, 10, 0, 0, 123456789, time.FixedZone("CST", 8*3600))
	o := &order{serial: serial{"h1", "20250615", "s1"}, nkpSeqID: "n1", qrToken: "tok", tradeType: upstream.TradeAlipayNative,
		amount: 123, created: now, expire: now.Add(time.Hour), stat: nkp.StatSuccess, wx: upstream.WxData{OpenID: "o1"}, refunded: 23}
	r := &refund{serial: serial{"h1", "20250615", "r1"}, nkpSeqID: "n2", order: o, amount: 23, stat: nkp.StatSuccess, created: now}
	l.counter = 2
	l.serials[o.serial] = true
	l.orders[o.serial] = o
	l.ordersBySeq[o.nkpSeqID] = o
	l.ordersByQR[o.qrToken] = o
	l.orderList = append(l.orderList, o)
	l.refunds[r.serial] = r
	l.refundsBySeq[r.nkpSeqID] = r
	l.refundList = append(l.refundList, r)
	l.notes = append(l.notes, &NotificationRecord{ID: "note1", Faults: []string{"duplicate"}})
	l.requests["h1"] = map[string]int{nkp.PathJSPay: 3}

	b, err := encodeLedger(&l)
	if err != nil {
		t.Fatal(err)
	}
	got := newLedger()
	if err := decodeLedger(b, &got); err != nil {
		t.Fatal(err)
	}
	again, err := encodeLedger(&got)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, again) {
		t.Fatalf("the decoded ledger encodes differently:\n%s\n%s", b, again)
	}
	o2 := got.orders[o.serial]
	if o2 == nil || got.ordersBySeq["n1"] != o2 || got.ordersByQR["tok"] != o2 || got.orderList[0] != o2 || got.refundList[0].order != o2 {
		t.Fatal("an order shared by the indexes and its refund is no longer one value")
	}
	if !o2.created.Equal(now) || o2.amount != 123 || o2.wx.OpenID != "o1" || got.counter != 2 || got.requests["h1"][nkp.PathJSPay] != 3 {
		t.Errorf("decoded order %+v, counter %d", o2, got.counter)
	}
	if got.merchants == nil || got.codes == nil {
		t.Error("maps made by newLedger were lost")
	}
}

// TestOldStateFileGetsNewFields decodes a file without some fields, as one
// written before they were added: they keep newLedger's values.
func TestOldStateFileGetsNewFields(t *testing.T) {
	got := newLedger()
	if err := decodeLedger([]byte(`{"version":1,"objects":[],"ledger":{"counter":7}}`), &got); err != nil {
		t.Fatal(err)
	}
	if got.counter != 7 || got.orders == nil || got.apps == nil {
		t.Errorf("counter %d, orders %v, apps %v", got.counter, got.orders, got.apps)
	}
	if err := decodeLedger([]byte(`{"version":99,"objects":[],"ledger":{}}`), &got); err == nil {
		t.Error("a file of another version was accepted")
	}
}
