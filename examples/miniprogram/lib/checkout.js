// The logic of the payment page, apart from the page so that it can be
// tested with Node's test runner against a stand-in wx. It knows nothing of
// the merchant's back end but the two calls of lib/backend.js.
//
// The result of a payment in the mini-program is never final: WeChat's
// requestPayment:ok is not proof of payment, and a cancelled dialog can
// still end in one. The merchant's back end learns the outcome from the
// sidecar's payment.succeeded / payment.failed / payment.closed event.
'use strict';

const NOT_FINAL =
  'This result is not final: the payment is confirmed by the merchant\'s server, ' +
  'which hears it from the payment sidecar.';

// A checkout reference as the merchant's back end hands it out.
const REFERENCE = /^[A-Za-z0-9_-]{1,64}$/;

// Statuses of payCheckout's result.
const STATUS = Object.freeze({
  OK: 'ok', // WeChat's dialog ended with requestPayment:ok
  CANCEL: 'cancel', // the buyer closed the dialog; the checkout can be paid again
  FAIL: 'fail', // WeChat's dialog failed
  EXPIRED: 'expired', // the checkout has expired
  PAID_ALREADY: 'paid_already', // the checkout was paid before
  LOGIN_FAILED: 'login_failed', // wx.login failed
  ERROR: 'error', // the back end could not be reached or refused otherwise
  NO_CHECKOUT: 'no_checkout', // the page was opened without a checkout reference
});

// decode undoes the URL encoding WeChat leaves on scene values.
function decode(v) {
  try {
    return decodeURIComponent(String(v));
  } catch (e) {
    return String(v);
  }
}

// readCheckout returns the checkout reference in the launch options of the
// page (onLoad's options, or wx.getEnterOptionsSync()), or '' when there is
// none:
//   - a URL Scheme, URL Link or plain scheme opens the page with
//     query "checkout=<ref>", so options.query.checkout;
//   - a native app launches path "pages/pay/index?checkout=<ref>", which
//     WeChat also hands over as options.query.checkout (scene 1069);
//   - a mini-program code (wxacode.getUnlimited) carries only "scene",
//     URL-encoded: options.query.scene is "checkout=<ref>" or "<ref>".
function readCheckout(options) {
  const query = (options && options.query) || {};
  let ref = query.checkout ? decode(query.checkout) : '';
  if (!ref && query.scene) {
    const scene = decode(query.scene);
    const m = /(?:^|&)checkout=([^&]*)/.exec(scene);
    ref = m ? decode(m[1]) : scene;
  }
  return REFERENCE.test(ref) ? ref : '';
}

function result(status, message, extra) {
  return Object.assign({ status, message: message || '', final: false, note: NOT_FINAL }, extra);
}

// login resolves to a wx.login code, or rejects with WeChat's errMsg.
function login(wx) {
  return new Promise((resolve, reject) => {
    wx.login({
      success: (res) => (res && res.code ? resolve(res.code) : reject(new Error((res && res.errMsg) || 'login:fail no code'))),
      fail: (res) => reject(new Error((res && res.errMsg) || 'login:fail')),
    });
  });
}

const REQUEST_PAYMENT_FIELDS = ['timeStamp', 'nonceStr', 'package', 'signType', 'paySign'];

// requestPayment resolves to WeChat's outcome of wx.requestPayment.
function requestPayment(wx, params) {
  return new Promise((resolve) => {
    const req = {};
    for (const f of REQUEST_PAYMENT_FIELDS) req[f] = params[f];
    req.success = (res) => resolve(result(STATUS.OK, (res && res.errMsg) || 'requestPayment:ok'));
    req.fail = (res) => {
      const msg = (res && res.errMsg) || 'requestPayment:fail';
      resolve(result(/cancel/.test(msg) ? STATUS.CANCEL : STATUS.FAIL, msg));
    };
    wx.requestPayment(req);
  });
}

// Back-end error codes that mean something to the buyer.
const BACKEND_STATUS = { checkout_expired: STATUS.EXPIRED, checkout_paid: STATUS.PAID_ALREADY };

// payCheckout pays the checkout: wx.login, then the back end's pay call
// with the code and the reference (it places the order and answers
// wx.requestPayment's parameters), then wx.requestPayment. It resolves to
// {status, message, final: false, note}, never rejects.
async function payCheckout({ wx, backend, checkout, scene }) {
  if (!REFERENCE.test(String(checkout || ''))) return result(STATUS.NO_CHECKOUT, 'no checkout reference');
  let code;
  try {
    code = await login(wx);
  } catch (e) {
    return result(STATUS.LOGIN_FAILED, e.message);
  }
  let answer;
  try {
    answer = await backend.pay({ checkout, code, scene });
  } catch (e) {
    return result(STATUS.ERROR, e.message);
  }
  if (!answer.ok) return result(BACKEND_STATUS[answer.code] || STATUS.ERROR, answer.message || answer.code, { code: answer.code });
  const params = answer.requestPayment || {};
  const missing = REQUEST_PAYMENT_FIELDS.filter((f) => typeof params[f] !== 'string' || !params[f]);
  if (missing.length) return result(STATUS.ERROR, 'the back end\'s answer lacks ' + missing.join(', '));
  return requestPayment(wx, params);
}

// describe is what the page tells the buyer about a result.
function describe(r) {
  switch (r.status) {
    case STATUS.OK:
      return 'Payment submitted. Waiting for the shop to confirm it.';
    case STATUS.CANCEL:
      return 'You closed the payment. You can pay again.';
    case STATUS.FAIL:
      return 'The payment did not go through (' + r.message + '). You can try again.';
    case STATUS.EXPIRED:
      return 'This checkout has expired. Go back to the shop to order again.';
    case STATUS.PAID_ALREADY:
      return 'This checkout is already paid.';
    case STATUS.LOGIN_FAILED:
      return 'Could not log in to WeChat (' + r.message + ').';
    case STATUS.NO_CHECKOUT:
      return 'Open this page from the shop\'s payment link.';
  }
  return 'Something went wrong (' + r.message + '). Please try again.';
}

module.exports = { readCheckout, payCheckout, describe, STATUS, NOT_FINAL };
