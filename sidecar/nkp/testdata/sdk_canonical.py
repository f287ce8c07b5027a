"""The string an official DouGong SDK signs, written apart from package nkp.

The SDKs take the caller's data, leave out empty first-level values, sort the
first-level keys and serialize compact JSON with non-ASCII text and "/" as
they are (Python: json.dumps(data, ensure_ascii=False, separators=(",", ":"))
over the sorted dictionary). Nothing below the first level is sorted: nested
objects are the JSON strings the caller built, or objects kept in the order
the caller wrote them.

Input on stdin: a JSON array of data objects. Output: a JSON array of their
canonical strings, in the same order.
"""
import json
import sys


def refuse_fraction(text):
    raise ValueError("a number with a fraction has no exact Python form: " + text)


def canonical(data):
    kept = {k: v for k, v in data.items() if v is not None and v != "" and v != {} and v != []}
    return json.dumps(dict(sorted(kept.items())), ensure_ascii=False, separators=(",", ":"))


def main():
    inputs = json.loads(sys.stdin.buffer.read().decode("utf-8"), parse_float=refuse_fraction)
    json.dump([canonical(d) for d in inputs], sys.stdout)


main()
