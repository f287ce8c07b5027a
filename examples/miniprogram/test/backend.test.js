// Tests of the back-end adapter against a stand-in wx.request.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');

const { newBackend } = require('../lib/backend');
const { fakeWx, REQUEST_PAYMENT } = require('./standin');

test('pay posts the reference, the code and the scene and reads request_payment', async () => {
  const { wx, calls } = fakeWx({ request: () => ({ statusCode: 200, data: { request_payment: REQUEST_PAYMENT } }) });
  const b = newBackend(wx, 'https://shop.example/api/');
  assert.deepEqual(await b.pay({ checkout: 'ck_1', code: 'c1', scene: 1065 }), { ok: true, requestPayment: REQUEST_PAYMENT });
  assert.equal(calls.request.length, 1);
  const o = calls.request[0];
  assert.equal(o.url, 'https://shop.example/api/miniprogram/pay');
  assert.equal(o.method, 'POST');
  assert.deepEqual(o.data, { checkout: 'ck_1', code: 'c1', scene: 1065 });
  assert.equal(o.header['content-type'], 'application/json');
});

test('pay reads the sidecar payment shape too', async () => {
  const { wx } = fakeWx({ request: () => ({ statusCode: 200, data: { id: 'pay_1', pay_params: { request_payment: REQUEST_PAYMENT } } }) });
  assert.deepEqual(await newBackend(wx, 'https://shop.example').pay({ checkout: 'ck_1', code: 'c1' }), { ok: true, requestPayment: REQUEST_PAYMENT });
});

test('pay turns refusals into codes and a lost answer into a rejection', async () => {
  for (const [res, code] of [
    [{ statusCode: 410, data: { error: { code: 'checkout_expired', message: 'expired' } } }, 'checkout_expired'],
    [{ statusCode: 409, data: { error: { code: 'checkout_paid' } } }, 'checkout_paid'],
    [{ statusCode: 502, data: 'Bad Gateway' }, 'http_502'],
    [{ statusCode: 200, data: { nothing: true } }, 'http_200'],
  ]) {
    const { wx } = fakeWx({ request: () => res });
    const out = await newBackend(wx, 'https://shop.example').pay({ checkout: 'ck_1', code: 'c1' });
    assert.equal(out.ok, false);
    assert.equal(out.code, code);
    assert.equal(out.statusCode, res.statusCode);
  }
  const { wx } = fakeWx({ request: () => ({ fail: 'request:fail timeout' }) });
  await assert.rejects(newBackend(wx, 'https://shop.example').pay({ checkout: 'ck_1', code: 'c1' }), /request:fail timeout/);
});

test('status asks the back end about the checkout', async () => {
  const { wx, calls } = fakeWx({ request: () => ({ statusCode: 200, data: { status: 'paid' } }) });
  assert.equal(await newBackend(wx, 'https://shop.example').status('ck 1'), 'paid');
  assert.equal(calls.request[0].url, 'https://shop.example/miniprogram/checkouts/ck%201');
  assert.equal(calls.request[0].method, 'GET');
  const missing = fakeWx({ request: () => ({ statusCode: 404, data: {} }) });
  await assert.rejects(newBackend(missing.wx, 'https://shop.example').status('ck_1'), /HTTP 404/);
});

test('the default back end is the one in config.js', async () => {
  const { wx, calls } = fakeWx({ request: () => ({ statusCode: 200, data: { status: 'unpaid' } }) });
  await newBackend(wx).status('ck_1');
  assert.equal(calls.request[0].url, require('../config').backendBaseURL + '/miniprogram/checkouts/ck_1');
});
