// Runs the Node client against the cases the Go test prepares.
//
// Usage: node runner.mjs <path of paysidecar.mjs> verify|calls <input.json>
// Prints one JSON document with the results on stdout.

import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const [clientPath, mode, input] = process.argv.slice(2);
const { Client, PaysidecarError, WebhookVerificationError, verifyWebhook } = await import(pathToFileURL(clientPath).href);
const data = JSON.parse(readFileSync(input, 'utf8'));

function verify(cases) {
  return cases.map((c) => {
    const body = Buffer.from(c.body_b64, 'base64');
    try {
      const event = verifyWebhook(c.secret, c.headers, body, { toleranceSeconds: c.tolerance, now: c.now });
      return { name: c.name, ok: true, event_id: event.id };
    } catch (err) {
      if (!(err instanceof WebhookVerificationError)) throw err;
      return { name: c.name, ok: false, error: err.message };
    }
  });
}

async function failure(call) {
  try {
    await call();
  } catch (err) {
    if (!(err instanceof PaysidecarError)) throw err;
    return { status: err.status, code: err.code, field: err.field ?? '' };
  }
  return { status: 0, code: 'no error raised' };
}

async function calls(spec) {
  const c = new Client(spec.base_url, { token: spec.token, timeoutMs: 10000 });
  const created = await c.createPayment(spec.payment, { idempotencyKey: spec.idempotency_key });
  const fetched = await c.getPayment(spec.odd_id);
  const refund = await c.createRefund(created.id, spec.refund, { idempotencyKey: spec.refund_key });
  const conflict = await failure(() => c.createPayment(spec.payment));
  const gateway = await failure(() => c.getRefund('re_gateway'));
  const checkout = await c.createCheckout(spec.checkout, { idempotencyKey: spec.checkout_key });
  const paid = await c.payCheckout(checkout.id, spec.pay);
  const checked = await c.getCheckout(checkout.id);
  return { created, fetched, refund, conflict, gateway, checkout, paid, checked };
}

const result = mode === 'verify' ? verify(data) : await calls(data);
process.stdout.write(JSON.stringify(result));
