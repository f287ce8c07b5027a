// The merchant's back end, as the payment page calls it: two calls, in one
// place, so that they can be pointed elsewhere without touching the page.
//
//   POST {base}/miniprogram/pay  {"checkout", "code", "scene"}
//        200 {"request_payment": {timeStamp, nonceStr, package, signType, paySign}}
//            (or the sidecar's payment: {"pay_params": {"request_payment": …}})
//        4xx {"error": {"code": "checkout_expired" | "checkout_paid" | …, "message"}}
//   GET  {base}/miniprogram/checkouts/{checkout}
//        200 {"status": "unpaid" | "paid" | "failed" | "closed" | "expired"}
//
// The back end creates the payment with the sidecar's POST /v1/payments
// (flow wechat-miniapp, buyer.code = the wx.login code). When the sidecar's
// checkout API is in place (POST /v1/checkouts to create, then a pay call
// with the login code), only the back end changes; this file stays.
'use strict';

const config = require('../config');

// request wraps wx.request in a promise of {statusCode, data}; it rejects
// only when no answer came.
function request(wx, options) {
  return new Promise((resolve, reject) => {
    wx.request(Object.assign({}, options, {
      header: { 'content-type': 'application/json' },
      success: (res) => resolve({ statusCode: res.statusCode, data: res.data }),
      fail: (res) => reject(new Error((res && res.errMsg) || 'request:fail')),
    }));
  });
}

// newBackend returns the back end at base, called through wx.
function newBackend(wx, base) {
  const root = String(base || config.backendBaseURL).replace(/\/+$/, '');
  return {
    // pay resolves to {ok: true, requestPayment} or {ok: false, code,
    // message, statusCode}.
    async pay({ checkout, code, scene }) {
      const res = await request(wx, { url: root + '/miniprogram/pay', method: 'POST', data: { checkout, code, scene } });
      const d = res.data && typeof res.data === 'object' ? res.data : {};
      if (res.statusCode === 200) {
        const rp = d.request_payment || (d.pay_params && d.pay_params.request_payment);
        if (rp) return { ok: true, requestPayment: rp };
      }
      const e = d.error || {};
      return { ok: false, code: e.code || 'http_' + res.statusCode, message: e.message || '', statusCode: res.statusCode };
    },
    // status resolves to the checkout's status as the back end knows it.
    async status(checkout) {
      const res = await request(wx, { url: root + '/miniprogram/checkouts/' + encodeURIComponent(checkout), method: 'GET' });
      if (res.statusCode !== 200 || !res.data || typeof res.data.status !== 'string') throw new Error('status: HTTP ' + res.statusCode);
      return res.data.status;
    },
  };
}

module.exports = { newBackend };
