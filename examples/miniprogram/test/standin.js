// A stand-in for the mini-program's wx and for the merchant's back end, for
// the tests of lib/.
'use strict';

// fakeWx answers wx.login with login ({code} or {fail: errMsg}),
// wx.requestPayment with payment ({ok: true} or {fail: errMsg}) and
// wx.request with request(options) → {statusCode, data} or {fail: errMsg}.
function fakeWx({ login = { code: 'code-1' }, payment = { ok: true }, request } = {}) {
  const calls = { login: 0, requestPayment: [], request: [] };
  const wx = {
    login(o) {
      calls.login++;
      queueMicrotask(() => (login.fail ? o.fail({ errMsg: login.fail }) : o.success({ code: login.code, errMsg: 'login:ok' })));
    },
    requestPayment(o) {
      calls.requestPayment.push(o);
      queueMicrotask(() => (payment.ok ? o.success({ errMsg: 'requestPayment:ok' }) : o.fail({ errMsg: payment.fail })));
    },
    request(o) {
      calls.request.push(o);
      const res = request ? request(o) : { statusCode: 404, data: {} };
      queueMicrotask(() => (res.fail ? o.fail({ errMsg: res.fail }) : o.success(res)));
    },
  };
  return { wx, calls };
}

// fakeBackend answers pay with answer ({ok, requestPayment} or {ok: false,
// code}) and records the calls.
function fakeBackend(answer) {
  const calls = [];
  return {
    calls,
    async pay(req) {
      calls.push(req);
      if (answer instanceof Error) throw answer;
      return answer;
    },
  };
}

const REQUEST_PAYMENT = { timeStamp: '1735704000', nonceStr: 'n1', package: 'prepay_id=wx1', signType: 'RSA', paySign: 'c2ln' };

module.exports = { fakeWx, fakeBackend, REQUEST_PAYMENT };
