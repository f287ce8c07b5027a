"""Runs the Python client against the cases the Go test prepares.

Usage: python3 runner.py <path of paysidecar.py> verify|calls <input.json>
Prints one JSON document with the results on stdout.
"""

import base64
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(sys.argv[1])))
import paysidecar  # noqa: E402


def verify(cases):
    out = []
    for case in cases:
        body = base64.b64decode(case["body_b64"])
        try:
            event = paysidecar.verify_webhook(case["secret"], case["headers"], body,
                                              tolerance=case["tolerance"], now=case["now"])
            out.append({"name": case["name"], "ok": True, "event_id": event["id"]})
        except paysidecar.WebhookVerificationError as err:
            out.append({"name": case["name"], "ok": False, "error": str(err)})
    return out


def failure(call):
    try:
        call()
    except paysidecar.PaysidecarError as err:
        return {"status": err.status, "code": err.code, "field": err.field or ""}
    return {"status": 0, "code": "no error raised"}


def calls(spec):
    c = paysidecar.Client(spec["base_url"], token=spec["token"], timeout=10)
    created = c.create_payment(spec["payment"], idempotency_key=spec["idempotency_key"])
    fetched = c.get_payment(spec["odd_id"])
    refund = c.create_refund(created["id"], spec["refund"], idempotency_key=spec["refund_key"])
    conflict = failure(lambda: c.create_payment(spec["payment"]))
    gateway = failure(lambda: c.get_refund("re_gateway"))
    checkout = c.create_checkout(spec["checkout"], idempotency_key=spec["checkout_key"])
    paid = c.pay_checkout(checkout["id"], spec["pay"])
    checked = c.get_checkout(checkout["id"])
    return {"created": created, "fetched": fetched, "refund": refund, "conflict": conflict, "gateway": gateway,
            "checkout": checkout, "paid": paid, "checked": checked}


def main():
    with open(sys.argv[3], encoding="utf-8") as f:
        data = json.load(f)
    result = verify(data) if sys.argv[2] == "verify" else calls(data)
    json.dump(result, sys.stdout, ensure_ascii=False)


main()
