// Tests of paysidecar-pay.mjs with Node's test runner, against stand-ins
// for WeChat's bridge, wx, the page and its timers. Run them with
// `node --test` in this directory, or `go test ./sdk/js`.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  pay, kindOf, alipayDeepLink, NOT_FINAL,
  KIND_WECHAT_JSAPI, KIND_WECHAT_MINIAPP, KIND_ALIPAY_NATIVE,
  STATUS_OK, STATUS_CANCEL, STATUS_FAIL, STATUS_UNAVAILABLE, STATUS_REDIRECTED,
} from './paysidecar-pay.mjs';

const WECHAT_UA = 'Mozilla/5.0 (Linux; Android 14) Mobile Safari/537.36 MicroMessenger/8.0.50';
const ANDROID_UA = 'Mozilla/5.0 (Linux; Android 14; Pixel 8) Mobile Safari/537.36';
const ALIPAY_UA = 'Mozilla/5.0 (iPhone) Mobile/15E148 AlipayClient/10.5.0';
const DESKTOP_UA = 'Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0 Safari/537.36';

const JSAPI = {
  appId: 'wx2421b1c4370ec43b', timeStamp: '1735704000', nonceStr: 'e61463f8efa94090b1f366cccfbbb444',
  package: 'prepay_id=up_wx335ac86f8c43d', signType: 'RSA', paySign: 'oR9d8PuhnIc+YZ8cBHFCwfgpaK9gd7vaRvkYD7rthRAZ/X+Q==',
};
const REQUEST_PAYMENT = { timeStamp: '1735704000', nonceStr: 'n1', package: 'prepay_id=wx1', signType: 'RSA', paySign: 'sig==' };
const QR = 'https://qr.alipay.com/bax00000000000000000?x=1&y=2';

// fakeEnv is a page: a document with listeners, a window, a location,
// and timers that run only when the test says so.
function fakeEnv({ ua = DESKTOP_UA, bridge, wx, wxjsEnvironment } = {}) {
  const listeners = new Map();
  const on = (target) => ({
    addEventListener(type, fn) { const k = target + ':' + type; listeners.set(k, [...(listeners.get(k) || []), fn]); },
    removeEventListener(type, fn) { const k = target + ':' + type; listeners.set(k, (listeners.get(k) || []).filter((f) => f !== fn)); },
  });
  const document = { visibilityState: 'visible', ...on('document') };
  const window = { WeixinJSBridge: bridge, __wxjs_environment: wxjsEnvironment, ...on('window') };
  const timers = [];
  const env = {
    window, document, navigator: { userAgent: ua }, location: { href: 'https://shop.example/pay' }, wx,
    setTimeout(fn, ms) { timers.push({ fn, ms, live: true }); return timers.length - 1; },
    clearTimeout(id) { if (timers[id]) timers[id].live = false; },
  };
  return {
    env, window, document, timers,
    fire(target, type) { for (const fn of listeners.get(target + ':' + type) || []) fn(); },
    listening(target, type) { return (listeners.get(target + ':' + type) || []).length; },
    runTimers() { for (const t of timers.splice(0)) if (t.live) t.fn(); },
  };
}

// bridgeAnswering is a WeixinJSBridge whose dialog ends with res.
function bridgeAnswering(res) {
  const calls = [];
  return { calls, invoke(name, params, cb) { calls.push([name, params]); queueMicrotask(() => cb(res)); } };
}

// wxAnswering is a mini-program wx whose requestPayment ends in success or
// fail with res.
function wxAnswering(outcome, res) {
  const calls = [];
  return { calls, requestPayment(o) { calls.push(o); queueMicrotask(() => o[outcome](res)); } };
}

function assertNotFinal(r) {
  assert.equal(r.final, false);
  assert.equal(r.note, NOT_FINAL);
  assert.match(r.note, /never final/);
}

test('kindOf reads kind, then flow, then the shape of pay_params', () => {
  assert.equal(kindOf({ kind: 'x', flow: 'wechat-jsapi' }), 'x');
  assert.equal(kindOf({ flow: 'wechat-jsapi', pay_params: {} }), KIND_WECHAT_JSAPI);
  assert.equal(kindOf({ flow: 'wechat-miniapp' }), KIND_WECHAT_MINIAPP);
  assert.equal(kindOf({ flow: 'alipay-native' }), KIND_ALIPAY_NATIVE);
  assert.equal(kindOf({ pay_params: JSAPI }), KIND_WECHAT_JSAPI);
  assert.equal(kindOf({ pay_params: JSON.stringify({ request_payment: REQUEST_PAYMENT }) }), KIND_WECHAT_MINIAPP);
  assert.equal(kindOf({ pay_params: { qr_code: QR } }), KIND_ALIPAY_NATIVE);
  assert.equal(kindOf({ pay_params: { foo: 1 } }), '');
  assert.equal(kindOf(null), '');
});

test('JSAPI with the bridge present: getBrandWCPayRequest gets exactly the six parameters', async () => {
  const bridge = bridgeAnswering({ err_msg: 'get_brand_wcpay_request:ok' });
  const page = fakeEnv({ ua: WECHAT_UA, bridge });
  const r = await pay({ flow: 'wechat-jsapi', pay_params: { ...JSAPI, extra: 'not for WeChat' } }, { env: page.env });
  assert.equal(r.status, STATUS_OK);
  assert.equal(r.kind, KIND_WECHAT_JSAPI);
  assert.equal(r.message, 'get_brand_wcpay_request:ok');
  assertNotFinal(r);
  assert.deepEqual(bridge.calls, [['getBrandWCPayRequest', JSAPI]]);
  assert.equal(page.listening('document', 'WeixinJSBridgeReady'), 0);
});

test('JSAPI reports cancel and failure apart', async () => {
  for (const [res, status, reason] of [
    [{ err_msg: 'get_brand_wcpay_request:cancel' }, STATUS_CANCEL, ''],
    [{ err_msg: 'get_brand_wcpay_request:fail', err_desc: 'system busy' }, STATUS_FAIL, 'system busy'],
    [{ err_msg: 'get_brand_wcpay_request:fail' }, STATUS_FAIL, 'wechat_failed'],
    [undefined, STATUS_FAIL, 'wechat_failed'],
  ]) {
    const page = fakeEnv({ ua: WECHAT_UA, bridge: bridgeAnswering(res) });
    const r = await pay({ kind: KIND_WECHAT_JSAPI, pay_params: JSON.stringify(JSAPI) }, { env: page.env });
    assert.equal(r.status, status, JSON.stringify(res));
    assert.equal(r.reason, reason);
    assert.equal(r.message, (res && res.err_msg) || '');
    assertNotFinal(r);
  }
});

test('JSAPI inside WeChat waits for WeixinJSBridgeReady before getBrandWCPayRequest', async () => {
  const page = fakeEnv({ ua: WECHAT_UA });
  const bridge = bridgeAnswering({ err_msg: 'get_brand_wcpay_request:ok' });
  const pending = pay({ flow: 'wechat-jsapi', pay_params: JSAPI }, { env: page.env });
  await new Promise((r) => setImmediate(r));
  assert.equal(page.listening('document', 'WeixinJSBridgeReady'), 1, 'pay listens for WeixinJSBridgeReady');
  assert.equal(bridge.calls.length, 0);
  page.window.WeixinJSBridge = bridge;
  page.fire('document', 'WeixinJSBridgeReady');
  const r = await pending;
  assert.equal(r.status, STATUS_OK);
  assert.equal(bridge.calls.length, 1);
  assert.equal(page.listening('document', 'WeixinJSBridgeReady'), 0, 'the listener is removed');
  page.runTimers(); // the timeout was cleared: nothing happens
});

test('JSAPI inside WeChat gives up when the bridge never comes', async () => {
  const page = fakeEnv({ ua: WECHAT_UA });
  const pending = pay({ flow: 'wechat-jsapi', pay_params: JSAPI }, { env: page.env, bridgeTimeoutMs: 1234 });
  await new Promise((r) => setImmediate(r));
  assert.equal(page.timers[0].ms, 1234);
  page.runTimers();
  const r = await pending;
  assert.equal(r.status, STATUS_UNAVAILABLE);
  assert.equal(r.reason, 'bridge_timeout');
  assert.equal(page.listening('document', 'WeixinJSBridgeReady'), 0);
});

test('JSAPI outside WeChat says so at once', async () => {
  const page = fakeEnv({ ua: DESKTOP_UA });
  const r = await pay({ flow: 'wechat-jsapi', pay_params: JSAPI }, { env: page.env });
  assert.equal(r.status, STATUS_UNAVAILABLE);
  assert.equal(r.reason, 'not_in_wechat');
  assert.equal(page.timers.length, 0);
  assertNotFinal(r);
});

test('JSAPI refuses incomplete parameters without calling WeChat', async () => {
  const bridge = bridgeAnswering({ err_msg: 'get_brand_wcpay_request:ok' });
  const page = fakeEnv({ ua: WECHAT_UA, bridge });
  const { paySign, ...rest } = JSAPI;
  assert.ok(paySign);
  const r = await pay({ flow: 'wechat-jsapi', pay_params: rest }, { env: page.env });
  assert.equal(r.status, STATUS_FAIL);
  assert.equal(r.reason, 'invalid_params');
  assert.match(r.message, /paySign/);
  assert.equal(bridge.calls.length, 0);
  for (const bad of [undefined, 'not json', '[1]', 42]) {
    const r2 = await pay({ flow: 'wechat-jsapi', pay_params: bad }, { env: page.env });
    assert.equal(r2.status, STATUS_FAIL);
    assert.equal(r2.reason, 'invalid_params');
  }
});

test('mini-program: wx.requestPayment gets the five parameters; ok, cancel and fail apart', async () => {
  for (const [outcome, res, status] of [
    ['success', { errMsg: 'requestPayment:ok' }, STATUS_OK],
    ['fail', { errMsg: 'requestPayment:fail cancel' }, STATUS_CANCEL],
    ['fail', { errMsg: 'requestPayment:fail (detail message)' }, STATUS_FAIL],
  ]) {
    const wx = wxAnswering(outcome, res);
    const page = fakeEnv({ wx });
    const r = await pay({ flow: 'wechat-miniapp', pay_params: { request_payment: REQUEST_PAYMENT, launch: { username: 'gh_1', path: 'pages/pay/index' } } }, { env: page.env });
    assert.equal(r.status, status, res.errMsg);
    assert.equal(r.message, res.errMsg);
    assertNotFinal(r);
    assert.equal(wx.calls.length, 1);
    const { success, fail, ...sent } = wx.calls[0];
    assert.equal(typeof success, 'function');
    assert.equal(typeof fail, 'function');
    assert.deepEqual(sent, REQUEST_PAYMENT);
  }
});

test('mini-program web-view goes to the mini-program page; elsewhere it gives the launch data', async () => {
  const launch = { username: 'gh_0sandbox0001', path: 'pages/pay/index?payment_id=pay_1&out_trade_no=O1' };
  const navigated = [];
  const page = fakeEnv({ wxjsEnvironment: 'miniprogram', wx: { miniProgram: { navigateTo: (o) => navigated.push(o.url) } } });
  const r = await pay({ flow: 'wechat-miniapp', pay_params: { request_payment: REQUEST_PAYMENT, launch } }, { env: page.env });
  assert.equal(r.status, STATUS_REDIRECTED);
  assert.equal(r.via, 'mini_program_page');
  assert.deepEqual(navigated, ['/pages/pay/index?payment_id=pay_1&out_trade_no=O1']);

  const browser = fakeEnv({ wx: null });
  const r2 = await pay({ flow: 'wechat-miniapp', pay_params: { request_payment: REQUEST_PAYMENT, launch } }, { env: browser.env });
  assert.equal(r2.status, STATUS_UNAVAILABLE);
  assert.equal(r2.reason, 'not_in_mini_program');
  assert.deepEqual(r2.launch, launch);
  assertNotFinal(r2);

  const r3 = await pay({ flow: 'wechat-miniapp', pay_params: { launch } }, { env: browser.env });
  assert.equal(r3.status, STATUS_FAIL);
  assert.equal(r3.reason, 'invalid_params');
});

const DEEP_LINK = 'alipays://platformapi/startapp?saId=10000007&qrcode=' + encodeURIComponent(QR);

test('alipayDeepLink uses the deep link given, else builds it from qr_code', () => {
  assert.equal(alipayDeepLink({ qr_code: QR }), DEEP_LINK);
  assert.equal(alipayDeepLink(JSON.stringify({ qr_code: QR, deep_link: 'alipays://given' })), 'alipays://given');
  assert.equal(alipayDeepLink({}), '');
  assert.equal(alipayDeepLink('not json'), '');
});

test('Alipay on a phone: the deep link, and nothing else once the Alipay app takes over', async () => {
  const page = fakeEnv({ ua: ANDROID_UA });
  const opened = [];
  const pending = pay({ flow: 'alipay-native', pay_params: { qr_code: QR } }, {
    env: page.env, alipay: { openDeepLink: (u) => opened.push(['deep', u]), openWebView: (u) => opened.push(['web', u]) },
  });
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(opened, [['deep', DEEP_LINK]]);
  page.document.visibilityState = 'hidden';
  page.fire('document', 'visibilitychange');
  const r = await pending;
  assert.equal(r.status, STATUS_REDIRECTED);
  assert.equal(r.via, 'deep_link');
  assert.equal(r.url, DEEP_LINK);
  assertNotFinal(r);
  page.runTimers();
  assert.deepEqual(opened, [['deep', DEEP_LINK]], 'no fallback after the app took over');
  assert.equal(page.listening('document', 'visibilitychange'), 0);
});

test('Alipay on a phone without the app falls back to the cashier page', async () => {
  const page = fakeEnv({ ua: ANDROID_UA });
  const pending = pay({ flow: 'alipay-native', pay_params: { qr_code: QR, deep_link: 'alipays://given' } }, { env: page.env, alipay: { fallbackMs: 700 } });
  await new Promise((r) => setImmediate(r));
  assert.equal(page.env.location.href, 'alipays://given', 'the deep link the sidecar gave is used as is');
  assert.equal(page.timers[0].ms, 700);
  page.runTimers();
  const r = await pending;
  assert.equal(r.status, STATUS_REDIRECTED);
  assert.equal(r.via, 'web_view');
  assert.equal(r.reason, 'no_alipay_app');
  assert.equal(page.env.location.href, QR);
});

test('Alipay inside Alipay opens the cashier; on a desktop it shows the QR code', async () => {
  const inside = fakeEnv({ ua: ALIPAY_UA });
  const r = await pay({ flow: 'alipay-native', pay_params: { qr_code: QR } }, { env: inside.env });
  assert.equal(r.via, 'web_view');
  assert.equal(inside.env.location.href, QR);

  const desktop = fakeEnv({ ua: DESKTOP_UA });
  const shown = [];
  const r2 = await pay({ flow: 'alipay-native', pay_params: { qr_code: QR } }, { env: desktop.env, alipay: { showQRCode: (u) => shown.push(u) } });
  assert.equal(r2.status, STATUS_REDIRECTED);
  assert.equal(r2.via, 'qr');
  assert.deepEqual(shown, [QR]);
  assert.equal(desktop.env.location.href, 'https://shop.example/pay', 'a desktop page is not navigated away');
  assertNotFinal(r2);
});

test('Alipay refuses a qr_code that is not a web URL, and unknown modes', async () => {
  const page = fakeEnv({ ua: ANDROID_UA });
  for (const qr of ['javascript:alert(1)', '', 'alipays://x']) {
    const r = await pay({ flow: 'alipay-native', pay_params: { qr_code: qr } }, { env: page.env });
    assert.equal(r.status, STATUS_FAIL);
    assert.equal(r.reason, 'invalid_params');
  }
  const r = await pay({ flow: 'alipay-native', pay_params: { qr_code: QR } }, { env: page.env, alipay: { mode: 'teleport' } });
  assert.equal(r.reason, 'invalid_options');
  assert.equal(page.env.location.href, 'https://shop.example/pay');
});

test('an unknown kind fails without touching the page', async () => {
  const page = fakeEnv();
  const r = await pay({ flow: 'unionpay-native', pay_params: { foo: 'bar' } }, { env: page.env });
  assert.equal(r.status, STATUS_FAIL);
  assert.equal(r.reason, 'unknown_kind');
  assertNotFinal(r);
});
