// Package js holds paysidecar's front-end helpers, ES modules without
// dependencies, and serves them to pages.
//
// paysidecar-pay.mjs takes the pay parameters of a payment (pay_params) and
// starts the payment the way its flow requires: WeixinJSBridge's
// getBrandWCPayRequest in WeChat's browser (after WeixinJSBridgeReady),
// wx.requestPayment in a mini-program, the alipays:// deep link with the
// cashier page or the QR code as fallback for Alipay. Its results tell
// cancel from failure and are never final: a payment is confirmed only by
// the sidecar's event or a query. Applications can copy the file or serve
// it with Handler.
package js

import (
	"embed"
	"net/http"
)

// PayModule is the file name of the pay helper.
const PayModule = "paysidecar-pay.mjs"

//go:embed paysidecar-pay.mjs
var files embed.FS

// Handler serves the helpers by file name (GET /paysidecar-pay.mjs) as
// text/javascript, so that a page can import them as modules. Mount it with
// http.StripPrefix under the path the page imports from.
func Handler() http.Handler {
	fileServer := http.FileServerFS(files)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		fileServer.ServeHTTP(w, r)
	})
}
