// The demo shop's page: create an order through the shop's back end, start
// the payment with paysidecar's front-end helper, and poll the order until
// the sidecar's webhook has marked it paid. No framework, no third-party
// script.
import { pay, alipayDeepLink } from '/js/paysidecar-pay.mjs';

const $ = (id) => document.getElementById(id);
const FINAL = { paid: true, failed: true, closed: true, refunded: true };
const STATUS_TEXT = { unpaid: 'waiting for payment', paid: 'paid', failed: 'failed', closed: 'closed', refunded: 'refunded' };
const wechatCode = new URLSearchParams(location.search).get('code') || '';
let pollTimer = null;

// yuan formats integer fen for display only; amounts travel as fen.
function yuan(fen) {
  const f = Math.max(0, Math.floor(Number(fen) || 0));
  return Math.floor(f / 100) + '.' + String(f % 100).padStart(2, '0');
}

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  Object.keys(attrs || {}).forEach((k) => e.setAttribute(k, attrs[k]));
  if (text !== undefined) e.textContent = text;
  return e;
}

function para(...parts) {
  const p = el('p');
  for (const part of parts) p.appendChild(typeof part === 'string' ? document.createTextNode(part) : part);
  return p;
}

function showError(message) {
  $('error').textContent = message;
  $('error').hidden = !message;
}

async function api(method, path, body) {
  const resp = await fetch(path, {
    method,
    headers: body ? { 'Content-Type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = await resp.json();
  if (!resp.ok) {
    const e = (data && data.error) || {};
    throw new Error((e.code || 'http_' + resp.status) + ': ' + (e.message || resp.statusText));
  }
  return data;
}

function showParams(action, title, params) {
  if (title) action.appendChild(para(title));
  action.appendChild(el('pre', { id: 'pay-params' }, JSON.stringify(params, null, 2)));
}

// Alipay without the app at hand: the deep link for a phone, and the
// cashier page (qr_code), as a link or in an iframe here.
function showAlipayChoices(action, params) {
  const link = alipayDeepLink(params);
  action.appendChild(para(el('a', { id: 'deeplink', href: link }, 'Open Alipay')));
  action.appendChild(para('Deep link: ', el('code', { id: 'deeplink-text' }, link)));
  action.appendChild(para(el('a', { id: 'cashier', href: params.qr_code, target: '_blank', rel: 'noopener' }, 'Open the cashier page')));
  const show = el('button', { type: 'button', id: 'show-cashier', class: 'secondary' }, 'Show the cashier page here');
  action.appendChild(show);
  show.addEventListener('click', () => showCashierFrame(action, params.qr_code));
}

function showCashierFrame(action, url) {
  const frame = $('cashier-frame') || action.appendChild(el('iframe', { id: 'cashier-frame', title: 'Alipay cashier' }));
  frame.src = url;
}

// startPayment hands the payment to the helper and says what happened.
// Whatever the helper reports, the order is paid only when the sidecar's
// webhook says so (result.final is always false).
async function startPayment(action, payment) {
  const params = payment.pay_params || {};
  action.appendChild(para('Starting the payment…'));
  const result = await pay(payment, {
    alipay: {
      openWebView: (url) => showCashierFrame(action, url),
      showQRCode: () => showAlipayChoices(action, params),
    },
  });
  action.dataset.payStatus = result.status;
  switch (result.status) {
    case 'ok':
      action.appendChild(para('WeChat finished the payment; waiting for confirmation.'));
      break;
    case 'cancel':
      action.appendChild(para('You closed WeChat Pay; the order is still open (' + result.message + ').'));
      break;
    case 'fail':
      action.appendChild(para('WeChat Pay did not complete: ' + (result.message || result.reason)));
      break;
    case 'redirected':
      if (result.via !== 'qr') action.appendChild(para('Opened Alipay (' + result.via + '); waiting for confirmation.'));
      break;
    case 'unavailable':
      if (payment.flow === 'wechat-miniapp') {
        const launch = result.launch || {};
        action.appendChild(para('Not inside the mini-program. A native app launches mini-program ',
          el('code', { id: 'launch-username' }, launch.username || '?'), ' at ',
          el('code', { id: 'launch-path' }, launch.path || '?'),
          '; inside it the page calls wx.requestPayment with:'));
        showParams(action, '', params.request_payment || {});
      } else {
        showParams(action, 'Not inside WeChat. In WeChat\'s browser this page calls WeixinJSBridge.invoke(\'getBrandWCPayRequest\', …) with:', params);
      }
      break;
  }
  action.appendChild(el('p', { id: 'pay-note', class: 'hint' }, result.note));
}

function setStatus(status) {
  const s = $('status');
  s.dataset.status = status;
  s.textContent = STATUS_TEXT[status] || status;
}

function poll(outTradeNo) {
  clearTimeout(pollTimer);
  api('GET', '/api/orders/' + encodeURIComponent(outTradeNo)).then((o) => {
    setStatus(o.status);
    if (!FINAL[o.status]) pollTimer = setTimeout(poll, 1500, outTradeNo);
  }, (err) => {
    showError(err.message);
    pollTimer = setTimeout(poll, 3000, outTradeNo);
  });
}

async function submit(ev) {
  ev.preventDefault();
  showError('');
  const flow = $('flow').value;
  const body = { flow, amount_fen: parseInt($('amount').value, 10) };
  if (flow !== 'alipay-native') {
    body.openid = $('openid').value.trim();
    if (!body.openid && wechatCode) body.code = wechatCode;
  }
  $('pay').disabled = true;
  try {
    const res = await api('POST', '/api/orders', body);
    const action = $('action');
    action.textContent = '';
    $('order-no').textContent = res.order.out_trade_no;
    $('payment-id').textContent = res.payment.id;
    setStatus(res.order.status);
    $('result').hidden = false;
    poll(res.order.out_trade_no);
    await startPayment(action, res.payment);
  } catch (err) {
    showError(err.message);
  } finally {
    $('pay').disabled = false;
  }
}

async function wechatLogin() {
  showError('');
  try {
    const res = await api('POST', '/api/wechat-login', { redirect_uri: location.origin + location.pathname });
    location.href = res.url;
  } catch (err) {
    showError(err.message);
  }
}

function updateForm() {
  $('yuan').textContent = yuan($('amount').value);
  $('buyer').hidden = $('flow').value === 'alipay-native';
}

$('order-form').addEventListener('submit', submit);
$('wechat-login').addEventListener('click', wechatLogin);
$('amount').addEventListener('input', updateForm);
$('flow').addEventListener('change', updateForm);
if (wechatCode) {
  $('flow').value = 'wechat-jsapi';
  $('code-note').hidden = false;
}
updateForm();
