"""Thin client for the paysidecar app API (Python 3.8+, standard library only).

Create a payment, read it, refund it, and verify the Standard Webhooks
signature of the events the sidecar delivers. The contract is
sdk/openapi.yaml; amounts are integer fen.

    from paysidecar import Client, verify_webhook

    client = Client("http://127.0.0.1:8080")
    payment = client.create_payment(
        {"flow": "alipay-native", "out_trade_no": "ORDER-1",
         "amount_fen": 1999, "description": "T-shirt"},
        idempotency_key="ORDER-1")
    event = verify_webhook(secret, request_headers, raw_body)
"""

import base64
import hashlib
import hmac
import json
import time
import urllib.error
import urllib.parse
import urllib.request

__all__ = ["Client", "PaysidecarError", "WebhookVerificationError", "verify_webhook"]

DEFAULT_TOLERANCE_SECONDS = 300


class PaysidecarError(Exception):
    """An error answer of the API, with its HTTP status and stable code."""

    def __init__(self, status, code, message, field=None):
        super().__init__("HTTP %d %s%s: %s" % (status, code, " (%s)" % field if field else "", message))
        self.status = status
        self.code = code
        self.message = message
        self.field = field


class Client:
    """Calls the sidecar's app API on base_url, e.g. http://127.0.0.1:8080."""

    def __init__(self, base_url="http://127.0.0.1:8080", token=None, timeout=30.0):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def create_payment(self, request, idempotency_key=None):
        """Places a payment; the answer carries pay_params for the front end."""
        return self._call("POST", "/v1/payments", request, idempotency_key)

    def get_payment(self, payment_id):
        """Returns a payment, refreshed from the upstream when it is not final."""
        return self._call("GET", "/v1/payments/" + _segment(payment_id))

    def find_payment(self, out_trade_no):
        """Returns the payment with the application's order number."""
        query = urllib.parse.urlencode({"out_trade_no": out_trade_no})
        return self._call("GET", "/v1/payments?" + query)

    def close_payment(self, payment_id, idempotency_key=None):
        """Closes an unpaid payment."""
        return self._call("POST", "/v1/payments/" + _segment(payment_id) + "/close", {}, idempotency_key)

    def create_refund(self, payment_id, request, idempotency_key=None):
        """Refunds all or part of a succeeded payment."""
        return self._call("POST", "/v1/payments/" + _segment(payment_id) + "/refunds", request, idempotency_key)

    def get_refund(self, refund_id):
        """Returns a refund."""
        return self._call("GET", "/v1/refunds/" + _segment(refund_id))

    def create_checkout(self, request, idempotency_key=None):
        """Creates a checkout: a payment offered before the buyer is known, with the links that open the mini-program's paying page."""
        return self._call("POST", "/v1/checkouts", request, idempotency_key)

    def get_checkout(self, checkout_id):
        """Returns a checkout and, once it was paid, its payment."""
        return self._call("GET", "/v1/checkouts/" + _segment(checkout_id))

    def pay_checkout(self, checkout_id, request, idempotency_key=None):
        """Pays a checkout with the buyer's wx.login code; answers the payment with its pay_params."""
        return self._call("POST", "/v1/checkouts/" + _segment(checkout_id) + "/pay", request, idempotency_key)

    def _call(self, method, path, body=None, idempotency_key=None):
        data = None
        headers = {"Accept": "application/json"}
        if body is not None:
            data = json.dumps(body, ensure_ascii=False).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        req = urllib.request.Request(self.base_url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return json.loads(resp.read().decode("utf-8"))
        except urllib.error.HTTPError as err:
            raw = err.read().decode("utf-8", "replace")
            try:
                detail = json.loads(raw)["error"]
                raise PaysidecarError(err.code, detail["code"], detail.get("message", ""), detail.get("field")) from None
            except (ValueError, KeyError, TypeError):
                raise PaysidecarError(err.code, "http_%d" % err.code, raw.strip()) from None


def _segment(value):
    return urllib.parse.quote(value, safe="")


class WebhookVerificationError(Exception):
    """A webhook delivery that must be refused (answer 4xx, do not process it)."""


def verify_webhook(secret, headers, body, tolerance=DEFAULT_TOLERANCE_SECONDS, now=None):
    """Verifies a Standard Webhooks delivery and returns the parsed event.

    secret is the webhook secret ("whsec_" + base64 of the key, or raw key
    text); headers is any mapping of the request headers (names in any
    case); body is the raw request body as bytes (or str, taken as UTF-8),
    exactly as received. Raises WebhookVerificationError when a header is
    missing, the timestamp is more than tolerance seconds from now, or no
    v1 signature matches.
    """
    key = _secret_key(secret)
    if isinstance(body, str):
        body = body.encode("utf-8")
    lower = {str(k).lower(): v for k, v in dict(headers).items()}
    msg_id = lower.get("webhook-id")
    timestamp = lower.get("webhook-timestamp")
    signatures = lower.get("webhook-signature")
    if not msg_id or not timestamp or not signatures:
        raise WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        sent = int(timestamp)
    except ValueError:
        raise WebhookVerificationError("webhook-timestamp is not unix seconds") from None
    current = int(time.time()) if now is None else int(now)
    if abs(current - sent) > tolerance:
        raise WebhookVerificationError("webhook-timestamp is outside the tolerance")
    signed = msg_id.encode("utf-8") + b"." + timestamp.encode("utf-8") + b"." + body
    expected = hmac.new(key, signed, hashlib.sha256).digest()
    for candidate in signatures.split():
        version, _, value = candidate.partition(",")
        if version != "v1":
            continue
        try:
            got = base64.b64decode(value, validate=True)
        except ValueError:
            continue
        if hmac.compare_digest(got, expected):
            return json.loads(body.decode("utf-8"))
    raise WebhookVerificationError("no matching signature")


def _secret_key(secret):
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret[len("whsec_"):], validate=True)
        except ValueError:
            raise WebhookVerificationError("the webhook secret is not whsec_ + base64") from None
    return secret.encode("utf-8")
