"""Rules between parameters, for the contract test (.ci/contract-test).

An OpenAPI description states what each parameter takes, not how parameters
relate to one another. The few rules of that kind that callmeter has are
written in the descriptions of the parameters concerned, and refused with
400 naming them. Here they are taught to schemathesis, so that the cases it
generates as valid are valid: a generated valid case that breaks one of them
is left out (a case generated as invalid is kept, and must be refused).

Each rule here must match a sentence of the description; nothing else goes here.
"""

from datetime import datetime, timezone

import schemathesis
from schemathesis import GenerationMode

# GET /v1/accounts/{account}/calls (and any route): "the whole query at most 8 KiB" (extract.rs, MAX_QUERY_BYTES).
MAX_QUERY_BYTES = 8 << 10


def _time(value):
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None


def _ordered(query, strictly):
    """`to` after `from` (strictly, or not before it) when both are given and readable."""
    start, end = _time(query.get("from")), _time(query.get("to"))
    if start is None or end is None:
        return True
    try:
        return end > start if strictly else end >= start
    except TypeError:  # one with a zone, one without: not comparable here, the server judges
        return True


def _before(a, b):
    try:
        return a < b
    except TypeError:
        return True


def _query_bytes(query):
    from urllib.parse import urlencode

    return len(urlencode({k: v for k, v in query.items() if v is not None}, doseq=True))


@schemathesis.hook
def filter_case(ctx, case):
    meta = case.meta
    if meta is None or meta.generation.mode != GenerationMode.POSITIVE:
        return True
    query = case.query or {}
    path = ctx.operation.path
    if _query_bytes(query) > MAX_QUERY_BYTES:
        return False
    if path == "/v1/accounts/{account}/usage":
        # "not with from and to"; "from: with to"; "to: with from, not before it".
        if "period" in query and ("from" in query or "to" in query):
            return False
        if ("from" in query) != ("to" in query):
            return False
        return _ordered(query, strictly=False)
    if path == "/v1/accounts/{account}/audit":
        # "not with day"; "to: after from"; from defaults to the start of the current period, to to now.
        if "day" in query and ("from" in query or "to" in query):
            return False
        now = datetime.now(timezone.utc)
        start, end = _time(query.get("from")), _time(query.get("to"))
        if start is not None and end is None and not _before(start, now):
            return False
        if end is not None and start is None and not _before(now, end):
            return False
        return _ordered(query, strictly=True)
    return True
