"""Seeds a callmeter server with calls sent by the official CloudEvents Python
SDK (`cloudevents` 2.x), in the three modes of the CloudEvents HTTP binding,
and checks that each is accepted once and a second sending is a duplicate.

Used by .ci/contract-test (the calls it leaves are the data the contract test
runs over). Usage: python3 cloudevents_python.py BASE_URL ADMIN_TOKEN
"""

import datetime
import json
import sys
import urllib.request

from cloudevents.core.bindings.http import to_binary_event, to_structured_event
from cloudevents.core.v1.event import CloudEvent

BASE, TOKEN = sys.argv[1], sys.argv[2]


def post(headers, body):
    request = urllib.request.Request(f"{BASE}/v1/events", data=body, method="POST")
    request.add_header("authorization", f"Bearer {TOKEN}")
    for name, value in headers.items():
        request.add_header(name, value)
    with urllib.request.urlopen(request) as response:
        return json.load(response)


def call(event_id, seconds_ago, interface, path):
    """A call as SDK users send one: its id and time in the envelope, the call in data."""
    return CloudEvent(
        {
            "id": event_id,
            "type": "com.example.api.call",
            "source": "https://gateway.example/eu-1",
            "time": datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=seconds_ago),
            "datacontenttype": "application/json",
        },
        {"account": "globex", "interface": interface, "method": "GET", "path": path, "status": 200},
    )


def batch(events):
    bodies = [json.loads(to_structured_event(e).body) for e in events]
    return {"content-type": "application/cloudevents-batch+json"}, json.dumps(bodies).encode()


structured = to_structured_event(call("py-structured-1", 120, "rest", "/out"))
binary = to_binary_event(call("py-binary-1", 90, "sdk", "/out/a.csv"))
requests = {
    "structured": (structured.headers, structured.body),
    "batch": batch([call(f"py-batch-{i}", 60 - i, "sftp", f"/out/{i}") for i in range(3)]),
    "binary": (binary.headers, binary.body),
}
for expected in ("accepted", "duplicate"):
    for mode, (headers, body) in requests.items():
        answer = post(headers, body)
        got = [r["status"] for r in answer["results"]]
        if not got or any(s != expected for s in got):
            sys.exit(f"cloudevents_python: {mode} mode: expected {expected}, got {answer}")
print("cloudevents_python: the Python SDK's structured, batch and binary events were accepted once, then duplicates")
