// The demo shop's page: create an order through the shop's back end, start
// the payment the way the flow requires, and poll the order until the
// sidecar's webhook has marked it paid. No framework, no third-party script.
'use strict';

(function () {
  var $ = function (id) { return document.getElementById(id); };
  var FINAL = { paid: true, failed: true, closed: true, refunded: true };
  var STATUS_TEXT = { unpaid: 'waiting for payment', paid: 'paid', failed: 'failed', closed: 'closed', refunded: 'refunded' };
  var wechatCode = new URLSearchParams(location.search).get('code') || '';
  var pollTimer = null;

  // yuan formats integer fen for display only; amounts travel as fen.
  function yuan(fen) {
    var f = Math.max(0, Math.floor(Number(fen) || 0));
    return Math.floor(f / 100) + '.' + String(f % 100).padStart(2, '0');
  }

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function para() {
    var p = el('p');
    for (var i = 0; i < arguments.length; i++) {
      var part = arguments[i];
      p.appendChild(typeof part === 'string' ? document.createTextNode(part) : part);
    }
    return p;
  }

  function showError(message) {
    $('error').textContent = message;
    $('error').hidden = !message;
  }

  function api(method, path, body) {
    return fetch(path, {
      method: method,
      headers: body ? { 'Content-Type': 'application/json' } : {},
      body: body ? JSON.stringify(body) : undefined
    }).then(function (resp) {
      return resp.json().then(function (data) {
        if (!resp.ok) {
          var e = (data && data.error) || {};
          throw new Error((e.code || 'http_' + resp.status) + ': ' + (e.message || resp.statusText));
        }
        return data;
      });
    });
  }

  function showParams(action, title, params) {
    if (title) action.appendChild(para(title));
    action.appendChild(el('pre', { id: 'pay-params' }, JSON.stringify(params, null, 2)));
  }

  // WeChat JSAPI: inside WeChat's browser hand the parameters to
  // getBrandWCPayRequest. Its "ok" only means the buyer finished the
  // WeChat dialog; the order is paid when the webhook says so.
  function payWeChatJSAPI(action, params) {
    if (typeof window.WeixinJSBridge !== 'undefined') {
      action.appendChild(para('Opening WeChat Pay…'));
      window.WeixinJSBridge.invoke('getBrandWCPayRequest', params, function (res) {
        var msg = res && res.err_msg;
        action.appendChild(para(msg === 'get_brand_wcpay_request:ok'
          ? 'WeChat finished the payment; waiting for confirmation.'
          : 'WeChat Pay did not complete: ' + msg));
      });
      return;
    }
    showParams(action, 'Not inside WeChat. In WeChat\'s browser this page calls WeixinJSBridge.invoke(\'getBrandWCPayRequest\', …) with:', params);
  }

  // WeChat mini-program: wx.requestPayment where the mini-program API is
  // present; from a web-view inside the mini-program, navigate to its pay
  // page (web-views cannot pay themselves); anywhere else show what a native
  // app needs to launch the mini-program.
  function payWeChatMiniApp(action, params) {
    var wx = window.wx;
    var launch = params.launch || {};
    var rp = params.request_payment || {};
    if (wx && typeof wx.requestPayment === 'function') {
      wx.requestPayment({
        timeStamp: rp.timeStamp, nonceStr: rp.nonceStr, package: rp['package'],
        signType: rp.signType, paySign: rp.paySign,
        success: function () { action.appendChild(para('WeChat finished the payment; waiting for confirmation.')); },
        fail: function (res) { action.appendChild(para('WeChat Pay did not complete: ' + (res && res.errMsg))); }
      });
      return;
    }
    if (window.__wxjs_environment === 'miniprogram' && wx && wx.miniProgram && launch.path) {
      wx.miniProgram.navigateTo({ url: '/' + launch.path });
      action.appendChild(para('Opening the mini-program\'s pay page…'));
      return;
    }
    action.appendChild(para('Not inside the mini-program. A native app launches mini-program ',
      el('code', { id: 'launch-username' }, launch.username || '?'), ' at ',
      el('code', { id: 'launch-path' }, launch.path || '?'),
      '; inside it the page calls wx.requestPayment with:'));
    showParams(action, '', rp);
  }

  // Alipay native: the deep link opens Alipay on a phone; the cashier URL
  // (qr_code) works in any browser or web view.
  function payAlipay(action, params) {
    var qr = params.qr_code || '';
    var link = params.deep_link || 'alipays://platformapi/startapp?saId=10000007&qrcode=' + encodeURIComponent(qr);
    var a = el('a', { id: 'deeplink', href: link }, 'Open Alipay');
    action.appendChild(para(a));
    action.appendChild(para('Deep link: ', el('code', { id: 'deeplink-text' }, link)));
    var cashier = el('a', { id: 'cashier', href: qr, target: '_blank', rel: 'noopener' }, 'Open the cashier page');
    var show = el('button', { type: 'button', id: 'show-cashier', 'class': 'secondary' }, 'Show the cashier page here');
    action.appendChild(para(cashier));
    action.appendChild(show);
    show.addEventListener('click', function () {
      var frame = $('cashier-frame') || action.appendChild(el('iframe', { id: 'cashier-frame', title: 'Alipay cashier' }));
      frame.src = qr;
    });
  }

  function setStatus(status) {
    var s = $('status');
    s.dataset.status = status;
    s.textContent = STATUS_TEXT[status] || status;
  }

  function poll(outTradeNo) {
    clearTimeout(pollTimer);
    api('GET', '/api/orders/' + encodeURIComponent(outTradeNo)).then(function (o) {
      setStatus(o.status);
      if (!FINAL[o.status]) pollTimer = setTimeout(poll, 1500, outTradeNo);
    }, function (err) {
      showError(err.message);
      pollTimer = setTimeout(poll, 3000, outTradeNo);
    });
  }

  function pay(ev) {
    ev.preventDefault();
    showError('');
    var flow = $('flow').value;
    var body = { flow: flow, amount_fen: parseInt($('amount').value, 10) };
    if (flow !== 'alipay-native') {
      body.openid = $('openid').value.trim();
      if (!body.openid && wechatCode) body.code = wechatCode;
    }
    $('pay').disabled = true;
    api('POST', '/api/orders', body).then(function (res) {
      var action = $('action');
      action.textContent = '';
      $('order-no').textContent = res.order.out_trade_no;
      $('payment-id').textContent = res.payment.id;
      setStatus(res.order.status);
      $('result').hidden = false;
      var params = res.payment.pay_params || {};
      if (flow === 'wechat-jsapi') payWeChatJSAPI(action, params);
      else if (flow === 'wechat-miniapp') payWeChatMiniApp(action, params);
      else payAlipay(action, params);
      poll(res.order.out_trade_no);
    }).catch(function (err) {
      showError(err.message);
    }).then(function () {
      $('pay').disabled = false;
    });
  }

  function wechatLogin() {
    showError('');
    api('POST', '/api/wechat-login', { redirect_uri: location.origin + location.pathname }).then(function (res) {
      location.href = res.url;
    }).catch(function (err) { showError(err.message); });
  }

  function updateForm() {
    $('yuan').textContent = yuan($('amount').value);
    $('buyer').hidden = $('flow').value === 'alipay-native';
  }

  $('order-form').addEventListener('submit', pay);
  $('wechat-login').addEventListener('click', wechatLogin);
  $('amount').addEventListener('input', updateForm);
  $('flow').addEventListener('change', updateForm);
  if (wechatCode) {
    $('flow').value = 'wechat-jsapi';
    $('code-note').hidden = false;
  }
  updateForm();
})();
