// Tests of the payment page's logic against a stand-in wx.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');

const { readCheckout, payCheckout, describe, STATUS, NOT_FINAL } = require('../lib/checkout');
const { fakeWx, fakeBackend, REQUEST_PAYMENT } = require('./standin');

function assertNotFinal(r) {
  assert.equal(r.final, false);
  assert.equal(r.note, NOT_FINAL);
}

test('readCheckout finds the reference of every kind of launch', () => {
  // URL Scheme, URL Link and plain scheme: query "checkout=ck_1".
  assert.equal(readCheckout({ query: { checkout: 'ck_1' }, scene: 1065 }), 'ck_1');
  // A native app's launch of "pages/pay/index?checkout=ck_2".
  assert.equal(readCheckout({ query: { checkout: 'ck_2' }, scene: 1069 }), 'ck_2');
  // A mini-program code: only scene, URL-encoded.
  assert.equal(readCheckout({ query: { scene: encodeURIComponent('checkout=ck_3&src=qr') } }), 'ck_3');
  assert.equal(readCheckout({ query: { scene: 'ck_4' } }), 'ck_4');
  // Encoded once more by a web page that built the link.
  assert.equal(readCheckout({ query: { checkout: 'ck%5F5' } }), 'ck_5');
  for (const bad of [undefined, {}, { query: {} }, { query: { checkout: '' } }, { query: { checkout: 'a b' } },
    { query: { checkout: 'x'.repeat(65) } }, { query: { checkout: '../x' } }, { query: { scene: '%E0%A4%A' } }]) {
    assert.equal(readCheckout(bad), '', JSON.stringify(bad));
  }
});

test('success: login, the back end with code and reference, requestPayment; not final', async () => {
  const { wx, calls } = fakeWx({ login: { code: 'c-42' } });
  const backend = fakeBackend({ ok: true, requestPayment: { ...REQUEST_PAYMENT, extra: 'x' } });
  const r = await payCheckout({ wx, backend, checkout: 'ck_1', scene: 1065 });
  assert.equal(r.status, STATUS.OK);
  assert.equal(r.message, 'requestPayment:ok');
  assertNotFinal(r);
  assert.deepEqual(backend.calls, [{ checkout: 'ck_1', code: 'c-42', scene: 1065 }]);
  assert.equal(calls.requestPayment.length, 1);
  const { success, fail, ...sent } = calls.requestPayment[0];
  assert.equal(typeof success, 'function');
  assert.equal(typeof fail, 'function');
  assert.deepEqual(sent, REQUEST_PAYMENT, 'exactly the five parameters of wx.requestPayment');
  assert.match(describe(r), /Waiting for the shop to confirm/);
});

test('cancel and failure are told apart, and the checkout can be paid again', async () => {
  for (const [errMsg, status] of [['requestPayment:fail cancel', STATUS.CANCEL], ['requestPayment:fail (insufficient balance)', STATUS.FAIL]]) {
    const { wx } = fakeWx({ payment: { fail: errMsg } });
    const r = await payCheckout({ wx, backend: fakeBackend({ ok: true, requestPayment: REQUEST_PAYMENT }), checkout: 'ck_1' });
    assert.equal(r.status, status);
    assert.equal(r.message, errMsg);
    assertNotFinal(r);
    assert.match(describe(r), /again/);
  }
});

test('an expired or paid checkout stops before WeChat Pay', async () => {
  for (const [code, status, text] of [['checkout_expired', STATUS.EXPIRED, /expired/], ['checkout_paid', STATUS.PAID_ALREADY, /already paid/],
    ['amount_invalid', STATUS.ERROR, /went wrong/]]) {
    const { wx, calls } = fakeWx();
    const r = await payCheckout({ wx, backend: fakeBackend({ ok: false, code, message: 'm' }), checkout: 'ck_1' });
    assert.equal(r.status, status);
    assert.equal(r.code, code);
    assert.equal(calls.requestPayment.length, 0);
    assert.match(describe(r), text);
    assertNotFinal(r);
  }
});

test('a failed login asks nothing of the back end', async () => {
  const { wx, calls } = fakeWx({ login: { fail: 'login:fail network' } });
  const backend = fakeBackend({ ok: true, requestPayment: REQUEST_PAYMENT });
  const r = await payCheckout({ wx, backend, checkout: 'ck_1' });
  assert.equal(r.status, STATUS.LOGIN_FAILED);
  assert.equal(r.message, 'login:fail network');
  assert.equal(backend.calls.length, 0);
  assert.equal(calls.requestPayment.length, 0);
  // wx.login answering without a code is a failure too.
  const noCode = fakeWx({ login: { code: '' } });
  assert.equal((await payCheckout({ wx: noCode.wx, backend, checkout: 'ck_1' })).status, STATUS.LOGIN_FAILED);
});

test('an unreachable back end or an incomplete answer is an error, and no reference nothing at all', async () => {
  const { wx, calls } = fakeWx();
  assert.equal((await payCheckout({ wx, backend: fakeBackend(new Error('request:fail timeout')), checkout: 'ck_1' })).status, STATUS.ERROR);
  const partial = { ...REQUEST_PAYMENT, paySign: '' };
  const r = await payCheckout({ wx, backend: fakeBackend({ ok: true, requestPayment: partial }), checkout: 'ck_1' });
  assert.equal(r.status, STATUS.ERROR);
  assert.match(r.message, /paySign/);
  assert.equal(calls.requestPayment.length, 0);
  const loginsBefore = calls.login;
  assert.equal((await payCheckout({ wx, backend: fakeBackend({ ok: true }), checkout: '' })).status, STATUS.NO_CHECKOUT);
  assert.equal(calls.login, loginsBefore, 'no login without a checkout');
});
