// The payment page: opened with a checkout reference in its launch query
// (URL Scheme, URL Link, a native app's launch or a mini-program code), it
// logs in, asks the merchant's back end for the payment and pays. What it
// shows is never the final word; the shop confirms the payment.
const { readCheckout, payCheckout, describe, STATUS } = require('../../lib/checkout');
const { newBackend } = require('../../lib/backend');

Page({
  data: { checkout: '', status: '', message: '', busy: false, canPay: false },

  onLoad(options) {
    this.backend = newBackend(wx);
    this.scene = (wx.getEnterOptionsSync && wx.getEnterOptionsSync().scene) || 0;
    const checkout = readCheckout(options);
    this.setData({
      checkout,
      canPay: Boolean(checkout),
      status: checkout ? '' : STATUS.NO_CHECKOUT,
      message: checkout ? '' : describe({ status: STATUS.NO_CHECKOUT }),
    });
  },

  async onPay() {
    if (this.data.busy || !this.data.checkout) return;
    this.setData({ busy: true, message: '' });
    const r = await payCheckout({ wx, backend: this.backend, checkout: this.data.checkout, scene: this.scene });
    const again = r.status === STATUS.CANCEL || r.status === STATUS.FAIL || r.status === STATUS.ERROR || r.status === STATUS.LOGIN_FAILED;
    this.setData({ busy: false, status: r.status, message: describe(r), canPay: again });
  },

  // onCheck asks the back end, which knows the final result from the
  // sidecar's event.
  async onCheck() {
    try {
      const status = await this.backend.status(this.data.checkout);
      this.setData({ message: status === 'paid' ? 'Paid. Thank you!' : 'The shop says: ' + status + '.' });
    } catch (e) {
      this.setData({ message: 'Could not reach the shop (' + e.message + ').' });
    }
  },
});
