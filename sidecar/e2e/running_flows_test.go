package e2e

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/paysidecar/paysidecar/sandbox"
	"github.com/paysidecar/paysidecar/sdk/client"
)

// flowList is the answer of GET /v1/flows.
type flowList struct {
	Flows []struct {
		Name         string   `json:"name"`
		TradeType    string   `json:"trade_type"`
		Capabilities []string `json:"capabilities"`
		Buyer        string   `json:"buyer"`
		APIVersions  []int    `json:"api_versions"`
	} `json:"flows"`
}

// TestTheAPIAcceptsTheRunningFlows checks that the app API is made of the
// plugins that run: GET /v1/flows lists every plugin built from plugins/,
// with what the application must give; any other flow is refused with an
// error naming the running ones; and a flow that declares it needs a buyer
// gets no order without one.
func TestTheAPIAcceptsTheRunningFlows(t *testing.T) {
	e := newEnv(t)
	ctx := ctxTimeout(t, 30*time.Second)
	var list flowList
	if err := e.sc.Client.Do(ctx, http.MethodGet, "/v1/flows", nil, &list); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range list.Flows {
		names = append(names, f.Name)
		if f.Buyer != "required" && f.Buyer != "optional" && f.Buyer != "none" {
			t.Errorf("flow %s: buyer %q", f.Name, f.Buyer)
		}
		if f.TradeType == "" || !slices.Contains(f.APIVersions, 2) {
			t.Errorf("flow %s: %+v", f.Name, f)
		}
	}
	want := slices.Clone(flowNames)
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Fatalf("GET /v1/flows lists %v, want every plugin built: %v", names, want)
	}

	var apiErr *client.APIError
	for _, c := range []struct{ flow, code string }{{"no-such-flow", "unknown_flow"}, {"", "missing_field"}} {
		_, err := e.sc.Client.CreatePayment(ctx, client.CreatePaymentRequest{Flow: c.flow, OutTradeNo: "flowcheck-" + c.code, AmountFen: 1, Description: "x"})
		if !errors.As(err, &apiErr) || apiErr.Code != c.code || apiErr.Field != "flow" {
			t.Fatalf("flow %q: %v, want %s", c.flow, err, c.code)
		}
		for _, n := range names {
			if !strings.Contains(apiErr.Message, n) {
				t.Errorf("flow %q: the message %q does not name the running flow %s", c.flow, apiErr.Message, n)
			}
		}
	}
	for _, f := range list.Flows {
		if f.Buyer != "required" {
			continue
		}
		_, err := e.sc.Client.CreatePayment(ctx, client.CreatePaymentRequest{Flow: f.Name, OutTradeNo: "nobuyer-" + f.Name, AmountFen: 1, Description: "x"})
		if !errors.As(err, &apiErr) || apiErr.Code != "missing_buyer" {
			t.Errorf("flow %s without a buyer: %v, want missing_buyer", f.Name, err)
		}
	}
	if st := e.sb.Stats(t, sandbox.DevHuifuID); st.Orders != 0 {
		t.Errorf("refused requests placed %d orders upstream", st.Orders)
	}
}
