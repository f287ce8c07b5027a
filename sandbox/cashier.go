package sandbox

import (
	"net/http"

	"github.com/paysidecar/paysidecar/sidecar/nkp"
)

// qrURL is the qr_code of an A_NATIVE order: the sandbox's own cashier page.
func qrURL(base, token string) string { return base + "/qr/" + token }

// cashierView is what the cashier page shows.
type cashierView struct {
	Token     string
	HuifuID   string
	GoodsDesc string
	Amount    string
	ReqSeqID  string
	State     string
	Payable   bool
	Message   string
}

// The cashier page: one order, and two forms that settle it as paid or
// failed, so a person or a headless browser can "pay".
const cashierPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sandbox cashier</title>
<style>
body{font-family:system-ui,sans-serif;max-width:28rem;margin:2rem auto;padding:0 1rem;color:#222}
.card{border:1px solid #ddd;border-radius:.5rem;padding:1rem 1.25rem}
.amount{font-size:2rem;font-weight:600;margin:.5rem 0}
button{font-size:1rem;padding:.6rem 1.2rem;margin:.5rem .5rem 0 0;border-radius:.4rem;border:1px solid #999;cursor:pointer}
#pay{background:#1677ff;color:#fff;border-color:#1677ff}
.note{color:#a00}.state{font-weight:600}
</style></head>
<body>
<p><strong>NKP sandbox cashier</strong> &mdash; no real money moves here.</p>
<div class="card">
<div>{{.GoodsDesc}}</div>
<div class="amount">&yen;{{.Amount}}</div>
<div>Merchant {{.HuifuID}}, order {{.ReqSeqID}}</div>
<p>Status: <span class="state" id="state">{{.State}}</span></p>
{{if .Message}}<p class="note" id="message">{{.Message}}</p>{{end}}
{{if .Payable}}
<form method="post" action="/qr/{{.Token}}" style="display:inline"><input type="hidden" name="action" value="pay"><button id="pay" type="submit">Pay</button></form>
<form method="post" action="/qr/{{.Token}}" style="display:inline"><input type="hidden" name="action" value="fail"><button id="fail" type="submit">Fail payment</button></form>
{{end}}
</div>
</body></html>
`

func stateText(o *order) string {
	switch {
	case o.stat == nkp.StatSuccess:
		return "paid"
	case o.closedBy != "":
		return "closed"
	case o.stat == nkp.StatFailure:
		return "failed"
	}
	return "waiting for payment"
}

// serveCashier shows the cashier page of an A_NATIVE order.
func (s *Server) serveCashier(w http.ResponseWriter, r *http.Request) {
	s.renderCashier(w, r.PathValue("token"), http.StatusOK, "")
}

// serveCashierAction settles the order as paid (action=pay) or failed
// (action=fail) and shows the page again.
func (s *Server) serveCashierAction(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	action := r.PostFormValue("action")
	if action != "pay" && action != "fail" {
		s.renderCashier(w, token, http.StatusBadRequest, "unknown action: use pay or fail")
		return
	}
	s.mu.Lock()
	o := s.l.ordersByQR[token]
	var err error
	if o != nil {
		err = s.settlePaymentLocked(o, action == "pay", "", "", s.now())
	}
	s.mu.Unlock()
	if o == nil {
		s.renderCashier(w, token, http.StatusNotFound, "")
		return
	}
	if err != nil {
		s.renderCashier(w, token, http.StatusConflict, err.Error())
		return
	}
	http.Redirect(w, r, "/qr/"+token, http.StatusSeeOther)
}

func (s *Server) renderCashier(w http.ResponseWriter, token string, status int, msg string) {
	s.mu.Lock()
	o := s.l.ordersByQR[token]
	var v cashierView
	if o != nil {
		expireLocked(o, s.now())
		v = cashierView{
			Token: token, HuifuID: o.huifu, GoodsDesc: o.goodsDesc, Amount: o.amount.Yuan(),
			ReqSeqID: o.seq, State: stateText(o), Payable: o.stat == nkp.StatProcessing, Message: msg,
		}
	}
	s.mu.Unlock()
	if o == nil {
		http.Error(w, "no such order", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := s.cashier.Execute(w, v); err != nil {
		s.log.Error("sandbox could not render the cashier page", "error", err)
	}
}
