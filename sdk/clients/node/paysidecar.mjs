// Thin client for the paysidecar app API (Node.js 20+, built-ins only).
//
// Create a payment, read it, refund it, and verify the Standard Webhooks
// signature of the events the sidecar delivers. The contract is
// sdk/openapi.yaml; amounts are integer fen.
//
//   import { Client, verifyWebhook } from './paysidecar.mjs';
//   const client = new Client('http://127.0.0.1:8080');
//   const payment = await client.createPayment(
//     { flow: 'alipay-native', out_trade_no: 'ORDER-1', amount_fen: 1999, description: 'T-shirt' },
//     { idempotencyKey: 'ORDER-1' });
//   const event = verifyWebhook(secret, req.headers, rawBody);

import { createHmac, timingSafeEqual } from 'node:crypto';

export const DEFAULT_TOLERANCE_SECONDS = 300;

/** An error answer of the API, with its HTTP status and stable code. */
export class PaysidecarError extends Error {
  constructor(status, code, message, field) {
    super(`HTTP ${status} ${code}${field ? ` (${field})` : ''}: ${message}`);
    this.name = 'PaysidecarError';
    this.status = status;
    this.code = code;
    this.field = field;
    this.detail = message;
  }
}

/** Calls the sidecar's app API on baseURL, e.g. http://127.0.0.1:8080. */
export class Client {
  constructor(baseURL = 'http://127.0.0.1:8080', { token, timeoutMs = 30000 } = {}) {
    this.baseURL = baseURL.replace(/\/+$/, '');
    this.token = token;
    this.timeoutMs = timeoutMs;
  }

  /** Places a payment; the answer carries pay_params for the front end. */
  createPayment(request, { idempotencyKey } = {}) {
    return this.#call('POST', '/v1/payments', request, idempotencyKey);
  }

  /** Returns a payment, refreshed from the upstream when it is not final. */
  getPayment(paymentId) {
    return this.#call('GET', `/v1/payments/${encodeURIComponent(paymentId)}`);
  }

  /** Returns the payment with the application's order number. */
  findPayment(outTradeNo) {
    return this.#call('GET', `/v1/payments?${new URLSearchParams({ out_trade_no: outTradeNo })}`);
  }

  /** Closes an unpaid payment. */
  closePayment(paymentId, { idempotencyKey } = {}) {
    return this.#call('POST', `/v1/payments/${encodeURIComponent(paymentId)}/close`, {}, idempotencyKey);
  }

  /** Refunds all or part of a succeeded payment. */
  createRefund(paymentId, request, { idempotencyKey } = {}) {
    return this.#call('POST', `/v1/payments/${encodeURIComponent(paymentId)}/refunds`, request, idempotencyKey);
  }

  /** Returns a refund. */
  getRefund(refundId) {
    return this.#call('GET', `/v1/refunds/${encodeURIComponent(refundId)}`);
  }

  /** Creates a checkout: a payment offered before the buyer is known, with the links that open the mini-program's paying page. */
  createCheckout(request, { idempotencyKey } = {}) {
    return this.#call('POST', '/v1/checkouts', request, idempotencyKey);
  }

  /** Returns a checkout and, once it was paid, its payment. */
  getCheckout(checkoutId) {
    return this.#call('GET', `/v1/checkouts/${encodeURIComponent(checkoutId)}`);
  }

  /** Pays a checkout with the buyer's wx.login code; answers the payment with its pay_params. */
  payCheckout(checkoutId, request, { idempotencyKey } = {}) {
    return this.#call('POST', `/v1/checkouts/${encodeURIComponent(checkoutId)}/pay`, request, idempotencyKey);
  }

  async #call(method, path, body, idempotencyKey) {
    const headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    if (idempotencyKey) headers['Idempotency-Key'] = idempotencyKey;
    const resp = await fetch(this.baseURL + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    const text = await resp.text();
    if (!resp.ok) {
      let detail;
      try {
        detail = JSON.parse(text).error;
      } catch {
        detail = undefined;
      }
      if (!detail || !detail.code) {
        throw new PaysidecarError(resp.status, `http_${resp.status}`, text.trim());
      }
      throw new PaysidecarError(resp.status, detail.code, detail.message ?? '', detail.field);
    }
    return JSON.parse(text);
  }
}

/** A webhook delivery that must be refused (answer 4xx, do not process it). */
export class WebhookVerificationError extends Error {
  constructor(message) {
    super(message);
    this.name = 'WebhookVerificationError';
  }
}

/**
 * Verifies a Standard Webhooks delivery and returns the parsed event.
 *
 * secret is the webhook secret ("whsec_" + base64 of the key, or raw key
 * text); headers is a Headers object or a plain object of the request
 * headers (names in any case, as Node's req.headers); body is the raw
 * request body exactly as received (Buffer, Uint8Array or string). Throws
 * WebhookVerificationError when a header is missing, the timestamp is more
 * than toleranceSeconds from now, or no v1 signature matches.
 */
export function verifyWebhook(secret, headers, body, { toleranceSeconds = DEFAULT_TOLERANCE_SECONDS, now } = {}) {
  const key = secretKey(secret);
  const raw = typeof body === 'string' ? Buffer.from(body, 'utf8') : Buffer.from(body);
  const id = header(headers, 'webhook-id');
  const timestamp = header(headers, 'webhook-timestamp');
  const signatures = header(headers, 'webhook-signature');
  if (!id || !timestamp || !signatures) {
    throw new WebhookVerificationError('missing webhook-id, webhook-timestamp or webhook-signature');
  }
  if (!/^[0-9]+$/.test(timestamp)) {
    throw new WebhookVerificationError('webhook-timestamp is not unix seconds');
  }
  const current = now === undefined ? Math.floor(Date.now() / 1000) : Math.floor(now);
  if (Math.abs(current - Number(timestamp)) > toleranceSeconds) {
    throw new WebhookVerificationError('webhook-timestamp is outside the tolerance');
  }
  const expected = createHmac('sha256', key)
    .update(`${id}.${timestamp}.`, 'utf8')
    .update(raw)
    .digest();
  for (const candidate of signatures.split(/\s+/)) {
    const comma = candidate.indexOf(',');
    if (comma < 0 || candidate.slice(0, comma) !== 'v1') continue;
    const value = candidate.slice(comma + 1);
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(value)) continue;
    const got = Buffer.from(value, 'base64');
    if (got.length === expected.length && timingSafeEqual(got, expected)) {
      return JSON.parse(raw.toString('utf8'));
    }
  }
  throw new WebhookVerificationError('no matching signature');
}

function header(headers, name) {
  if (typeof headers.get === 'function') return headers.get(name) ?? undefined;
  for (const [k, v] of Object.entries(headers)) {
    if (k.toLowerCase() === name) return Array.isArray(v) ? v[0] : v;
  }
  return undefined;
}

function secretKey(secret) {
  if (secret.startsWith('whsec_')) {
    const b64 = secret.slice('whsec_'.length);
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) {
      throw new WebhookVerificationError('the webhook secret is not whsec_ + base64');
    }
    return Buffer.from(b64, 'base64');
  }
  return Buffer.from(secret, 'utf8');
}
