// paysidecar-pay: start a payment in the front end with the pay parameters
// the sidecar answered (a payment's `pay_params`). An ES module without
// dependencies, for H5 pages (WeChat's browser, Alipay, any mobile or
// desktop browser) and for mini-program code that copies it.
//
//   import { pay } from './paysidecar-pay.mjs';
//   const result = await pay(payment);          // payment = the sidecar's payment object
//   if (result.status === 'ok') showWaiting();  // never "paid": see NOT_FINAL
//
// What the front end learns is never final. WeChat itself says its "ok" is
// not reliable proof of payment, a cancelled dialog may still be paid
// later, and a deep link only means an app was opened. The order is paid
// when the sidecar says so: its payment.succeeded event to the merchant's
// back end, or GET /v1/payments/{id}. Every result carries final: false
// and that note.

/** Kinds of pay parameters, one per flow of the sidecar. */
export const KIND_WECHAT_JSAPI = 'wechat_jsapi';
export const KIND_WECHAT_MINIAPP = 'wechat_miniapp';
export const KIND_ALIPAY_NATIVE = 'alipay_native';

/** Statuses of a result. */
export const STATUS_OK = 'ok'; // the buyer finished the payment dialog
export const STATUS_CANCEL = 'cancel'; // the buyer closed the dialog
export const STATUS_FAIL = 'fail'; // the dialog failed, or the parameters are wrong
export const STATUS_UNAVAILABLE = 'unavailable'; // this page cannot pay this way here
export const STATUS_REDIRECTED = 'redirected'; // the buyer was sent to Alipay (deep link, web view or QR code)

/** What every result says about itself. */
export const NOT_FINAL =
  'The front-end result is never final: the payment is confirmed only by the sidecar ' +
  '(the payment.succeeded event to your back end, or GET /v1/payments/{id}).';

const FLOW_KINDS = {
  'wechat-jsapi': KIND_WECHAT_JSAPI,
  'wechat-miniapp': KIND_WECHAT_MINIAPP,
  'alipay-native': KIND_ALIPAY_NATIVE,
};

const JSAPI_FIELDS = ['appId', 'timeStamp', 'nonceStr', 'package', 'signType', 'paySign'];
const REQUEST_PAYMENT_FIELDS = ['timeStamp', 'nonceStr', 'package', 'signType', 'paySign'];
const ALIPAY_DEEP_LINK = 'alipays://platformapi/startapp?saId=10000007&qrcode=';

/** How long pay waits for WeixinJSBridgeReady inside WeChat, by default. */
export const DEFAULT_BRIDGE_TIMEOUT_MS = 5000;
/** How long pay waits for the Alipay app to take over before it falls back, by default. */
export const DEFAULT_ALIPAY_FALLBACK_MS = 2500;

/**
 * Parses pay parameters given as an object or as JSON text.
 * @param {object|string} p
 * @returns {object|null}
 */
function parseParams(p) {
  if (typeof p === 'string') {
    try {
      p = JSON.parse(p);
    } catch {
      return null;
    }
  }
  return p && typeof p === 'object' && !Array.isArray(p) ? p : null;
}

/**
 * Tells which kind of pay parameters a payment carries: its `kind`, the
 * kind of its `flow`, or, failing both, the shape of its `pay_params`.
 * @param {{kind?: string, flow?: string, pay_params?: object|string}} payment
 * @returns {string} one of the KIND_ constants, or '' when unknown
 */
export function kindOf(payment) {
  if (!payment) return '';
  if (payment.kind) return String(payment.kind);
  if (payment.flow && FLOW_KINDS[payment.flow]) return FLOW_KINDS[payment.flow];
  const p = parseParams(payment.pay_params);
  if (!p) return '';
  if (p.request_payment) return KIND_WECHAT_MINIAPP;
  if (p.paySign && p.appId) return KIND_WECHAT_JSAPI;
  if (p.qr_code) return KIND_ALIPAY_NATIVE;
  return '';
}

/** The environment pay runs in; every member can be replaced for tests. */
function environment(env) {
  const g = globalThis;
  const e = Object.assign({}, env);
  e.window = e.window || (typeof g.window !== 'undefined' ? g.window : g);
  e.document = e.document || e.window.document || g.document;
  e.navigator = e.navigator || e.window.navigator || g.navigator || {};
  e.location = e.location || e.window.location || g.location;
  if (!('wx' in e)) e.wx = e.window.wx || g.wx;
  e.setTimeout = e.setTimeout || g.setTimeout.bind(g);
  e.clearTimeout = e.clearTimeout || g.clearTimeout.bind(g);
  return e;
}

function result(kind, status, fields) {
  return Object.assign({ kind, status, final: false, message: '', reason: '', note: NOT_FINAL }, fields);
}

function missing(p, fields) {
  return fields.filter((f) => typeof p[f] !== 'string' || p[f] === '');
}

/**
 * Starts the payment the way its kind requires and resolves when the front
 * end knows as much as it will: the WeChat dialog closed, or the buyer was
 * sent to Alipay. It never rejects for a payment that did not happen; the
 * result says why.
 *
 * @param {{kind?: string, flow?: string, pay_params: object|string}} payment
 *   the sidecar's payment object (flow and pay_params), or {kind, pay_params}
 * @param {object} [options]
 * @param {number} [options.bridgeTimeoutMs] how long to wait for WeixinJSBridgeReady
 * @param {boolean} [options.waitForBridge] wait for the bridge even when the user agent does not say WeChat
 * @param {object} [options.alipay] Alipay: {mode: 'auto'|'deep_link'|'web_view'|'qr', fallbackMs,
 *   openDeepLink(url), openWebView(url), showQRCode(url)}
 * @param {object} [options.env] replaces window, document, navigator, location, wx, setTimeout, clearTimeout
 * @returns {Promise<{kind: string, status: string, final: false, message: string, reason: string,
 *   note: string, raw?: object, via?: string, url?: string, launch?: object}>}
 */
export async function pay(payment, options = {}) {
  const env = environment(options.env);
  const kind = kindOf(payment);
  const params = parseParams(payment && payment.pay_params);
  if (!params) return result(kind, STATUS_FAIL, { reason: 'invalid_params', message: 'pay_params is missing or not a JSON object' });
  switch (kind) {
    case KIND_WECHAT_JSAPI:
      return payWeChatJSAPI(params, env, options);
    case KIND_WECHAT_MINIAPP:
      return payWeChatMiniApp(params, env);
    case KIND_ALIPAY_NATIVE:
      return payAlipay(params, env, options.alipay || {});
  }
  return result(kind, STATUS_FAIL, { reason: 'unknown_kind', message: 'no way to pay pay_params of kind "' + kind + '"' });
}

/** Reports whether the user agent is WeChat's browser. */
export function inWeChat(userAgent) {
  return /MicroMessenger/i.test(String(userAgent || ''));
}

/** Reports whether the user agent is Alipay's own browser. */
export function inAlipay(userAgent) {
  return /AlipayClient/i.test(String(userAgent || ''));
}

/**
 * Resolves to WeixinJSBridge once it is there: at once when it already is,
 * else at WeixinJSBridgeReady, which WeChat fires on document when the
 * bridge arrives after the page's scripts. Outside WeChat it resolves to
 * null at once; inside, to null after timeoutMs.
 */
function weixinBridge(env, timeoutMs, wait) {
  const ready = () => {
    const b = env.window.WeixinJSBridge;
    return b && typeof b.invoke === 'function' ? b : null;
  };
  if (ready()) return Promise.resolve(ready());
  if (!wait || !env.document || typeof env.document.addEventListener !== 'function') return Promise.resolve(null);
  return new Promise((resolve) => {
    let timer = null;
    const onReady = () => {
      env.clearTimeout(timer);
      env.document.removeEventListener('WeixinJSBridgeReady', onReady, false);
      resolve(ready());
    };
    timer = env.setTimeout(() => {
      env.document.removeEventListener('WeixinJSBridgeReady', onReady, false);
      resolve(ready());
    }, timeoutMs);
    env.document.addEventListener('WeixinJSBridgeReady', onReady, false);
  });
}

async function payWeChatJSAPI(params, env, options) {
  const kind = KIND_WECHAT_JSAPI;
  const gaps = missing(params, JSAPI_FIELDS);
  if (gaps.length) return result(kind, STATUS_FAIL, { reason: 'invalid_params', message: 'pay_params lacks ' + gaps.join(', ') });
  const wait = options.waitForBridge || inWeChat(env.navigator.userAgent);
  const bridge = await weixinBridge(env, options.bridgeTimeoutMs ?? DEFAULT_BRIDGE_TIMEOUT_MS, wait);
  if (!bridge) {
    return result(kind, STATUS_UNAVAILABLE, wait
      ? { reason: 'bridge_timeout', message: 'WeixinJSBridge did not become ready' }
      : { reason: 'not_in_wechat', message: 'open this page in WeChat to pay' });
  }
  const request = {};
  for (const f of JSAPI_FIELDS) request[f] = params[f];
  return new Promise((resolve) => {
    bridge.invoke('getBrandWCPayRequest', request, (res) => {
      const msg = String((res && res.err_msg) || '');
      const status = /:ok$/.test(msg) ? STATUS_OK : /:cancel$/.test(msg) ? STATUS_CANCEL : STATUS_FAIL;
      const fields = { message: msg, raw: res };
      if (status === STATUS_FAIL) fields.reason = (res && res.err_desc) || 'wechat_failed';
      resolve(result(kind, status, fields));
    });
  });
}

async function payWeChatMiniApp(params, env) {
  const kind = KIND_WECHAT_MINIAPP;
  const rp = params.request_payment || (params.paySign ? params : null);
  const launch = params.launch || null;
  const wx = env.wx;
  if (!rp) return result(kind, STATUS_FAIL, { reason: 'invalid_params', message: 'pay_params lacks request_payment' });
  const gaps = missing(rp, REQUEST_PAYMENT_FIELDS);
  if (gaps.length) return result(kind, STATUS_FAIL, { reason: 'invalid_params', message: 'request_payment lacks ' + gaps.join(', ') });
  if (wx && typeof wx.requestPayment === 'function') {
    return new Promise((resolve) => {
      const request = {};
      for (const f of REQUEST_PAYMENT_FIELDS) request[f] = rp[f];
      request.success = (res) => resolve(result(kind, STATUS_OK, { message: String((res && res.errMsg) || 'requestPayment:ok'), raw: res }));
      request.fail = (res) => {
        const msg = String((res && res.errMsg) || 'requestPayment:fail');
        const cancel = /cancel/.test(msg);
        resolve(result(kind, cancel ? STATUS_CANCEL : STATUS_FAIL, { message: msg, raw: res, reason: cancel ? '' : 'wechat_failed' }));
      };
      wx.requestPayment(request);
    });
  }
  // A web-view inside the mini-program cannot pay; its mini-program page can.
  if (env.window.__wxjs_environment === 'miniprogram' && wx && wx.miniProgram && launch && launch.path) {
    const url = '/' + String(launch.path).replace(/^\//, '');
    wx.miniProgram.navigateTo({ url });
    return result(kind, STATUS_REDIRECTED, { via: 'mini_program_page', url, launch, message: 'sent to the mini-program page ' + url });
  }
  return result(kind, STATUS_UNAVAILABLE, {
    reason: 'not_in_mini_program', launch,
    message: 'wx.requestPayment is only in the mini-program; launch it with ' + (launch ? launch.username + ' ' + launch.path : 'its launch data'),
  });
}

/**
 * Waits until the page is hidden (the Alipay app took over) or ms pass;
 * resolves to whether the page was hidden.
 */
function hiddenWithin(env, ms) {
  const doc = env.document;
  if (!doc || typeof doc.addEventListener !== 'function') return Promise.resolve(false);
  if (doc.visibilityState === 'hidden') return Promise.resolve(true);
  return new Promise((resolve) => {
    let timer = null;
    const done = (hidden) => {
      env.clearTimeout(timer);
      doc.removeEventListener('visibilitychange', onChange, false);
      env.window.removeEventListener && env.window.removeEventListener('pagehide', onHide, false);
      resolve(hidden);
    };
    const onChange = () => { if (doc.visibilityState === 'hidden') done(true); };
    const onHide = () => done(true);
    timer = env.setTimeout(() => done(false), ms);
    doc.addEventListener('visibilitychange', onChange, false);
    env.window.addEventListener && env.window.addEventListener('pagehide', onHide, false);
  });
}

/**
 * Returns the deep link that opens the Alipay app at the cashier of
 * pay_params: its deep_link when the sidecar gave one, else
 * alipays://platformapi/startapp?saId=10000007&qrcode=<url-encoded qr_code>.
 * @param {object|string} payParams
 * @returns {string} the link, or '' when pay_params has no qr_code
 */
export function alipayDeepLink(payParams) {
  const p = parseParams(payParams);
  if (!p) return '';
  if (typeof p.deep_link === 'string' && p.deep_link) return p.deep_link;
  return typeof p.qr_code === 'string' && p.qr_code ? ALIPAY_DEEP_LINK + encodeURIComponent(p.qr_code) : '';
}

function isMobile(userAgent) {
  return /Android|iPhone|iPad|iPod|Mobile|HarmonyOS/i.test(String(userAgent || ''));
}

async function payAlipay(params, env, opts) {
  const kind = KIND_ALIPAY_NATIVE;
  const qr = typeof params.qr_code === 'string' ? params.qr_code : '';
  if (!/^https?:\/\//i.test(qr)) return result(kind, STATUS_FAIL, { reason: 'invalid_params', message: 'pay_params.qr_code is not an http(s) URL' });
  const deepLink = alipayDeepLink(params);
  const go = (url) => { env.location.href = url; };
  const openDeepLink = opts.openDeepLink || go;
  const openWebView = opts.openWebView || go;
  const ua = env.navigator.userAgent;
  let mode = opts.mode || 'auto';
  if (mode === 'auto') mode = inAlipay(ua) ? 'web_view' : isMobile(ua) ? 'deep_link' : 'qr';
  switch (mode) {
    case 'web_view':
      openWebView(qr);
      return result(kind, STATUS_REDIRECTED, { via: 'web_view', url: qr, message: 'opened the Alipay cashier page' });
    case 'qr':
      if (typeof opts.showQRCode === 'function') opts.showQRCode(qr);
      return result(kind, STATUS_REDIRECTED, { via: 'qr', url: qr, message: 'scan the QR code of url with Alipay' });
    case 'deep_link': {
      const hidden = hiddenWithin(env, opts.fallbackMs ?? DEFAULT_ALIPAY_FALLBACK_MS);
      openDeepLink(deepLink);
      if (await hidden) return result(kind, STATUS_REDIRECTED, { via: 'deep_link', url: deepLink, message: 'opened the Alipay app' });
      // No Alipay app took over: the cashier page works in any browser.
      openWebView(qr);
      return result(kind, STATUS_REDIRECTED, { via: 'web_view', url: qr, reason: 'no_alipay_app', message: 'the Alipay app did not open; opened the cashier page' });
    }
  }
  return result(kind, STATUS_FAIL, { reason: 'invalid_options', message: 'alipay.mode must be auto, deep_link, web_view or qr' });
}
