"""The measuring half of benches/otlp_load.sh (see there)."""
import http.client
import json
import os
import queue
import random
import sqlite3
import statistics
import sys
import threading
import time
import urllib.parse

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

base, key, session, total, exporters, db_path = sys.argv[1:7]
total, exporters = int(total), int(exporters)
url = urllib.parse.urlparse(base)
BATCH = 512
TOOLS = ["search", "fetch_page", "summarise", "delete_workflow", "send_mail"]


def kv(k, v):
    return KeyValue(key=k, value=AnyValue(string_value=v))


def batch(traces_of=8, start_ns=None):
    """512 spans: traces of `traces_of` spans (a root and its children)."""
    now = start_ns or time.time_ns() - 60_000_000_000
    spans = []
    while len(spans) < BATCH:
        trace = random.randbytes(16)
        root = random.randbytes(8)
        for i in range(traces_of):
            sid = root if i == 0 else random.randbytes(8)
            start = now + i * 1_000_000
            spans.append(Span(
                trace_id=trace, span_id=sid, parent_span_id=b"" if i == 0 else root,
                name="run" if i == 0 else "tools/call", kind=Span.SPAN_KIND_SERVER,
                start_time_unix_nano=start, end_time_unix_nano=start + random.randint(1, 50) * 1_000_000,
                attributes=[kv("workflow", "nightly")] if i == 0 else [
                    kv("gen_ai.tool.name", random.choice(TOOLS)), kv("mcp.method.name", "tools/call"),
                    kv("mcp.session.id", "s-" + trace.hex()[:8]), kv("http.route", "/mcp/kb")],
                status=Status(code=Status.STATUS_CODE_ERROR if random.random() < 0.02 else Status.STATUS_CODE_UNSET)))
    req = ExportTraceServiceRequest(resource_spans=[ResourceSpans(
        resource=Resource(attributes=[kv("service.name", "bench-agent"), kv("host.name", "bench")]),
        scope_spans=[ScopeSpans(scope=InstrumentationScope(name="bench"), spans=spans[:BATCH])])])
    return req.SerializeToString()


def post_all(bodies, threads):
    """POSTs every body with `threads` connections; returns seconds."""
    q = queue.Queue()
    for b in bodies:
        q.put(b)
    errors = []

    def work():
        c = http.client.HTTPConnection(url.hostname, url.port)
        while True:
            try:
                body = q.get_nowait()
            except queue.Empty:
                return
            c.request("POST", "/v1/traces", body, {"Authorization": f"Bearer {key}",
                                                   "Content-Type": "application/x-protobuf"})
            r = c.getresponse()
            r.read()
            if r.status != 200:
                errors.append(r.status)

    t0 = time.perf_counter()
    ts = [threading.Thread(target=work) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors[:5]
    return time.perf_counter() - t0


def get_rate(path, n, threads, headers):
    """GET `path` n times over `threads` connections; requests per second."""
    per = n // threads

    def work():
        c = http.client.HTTPConnection(url.hostname, url.port)
        for _ in range(per):
            c.request("GET", path, headers=headers)
            r = c.getresponse()
            r.read()

    t0 = time.perf_counter()
    ts = [threading.Thread(target=work) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return per * threads / (time.perf_counter() - t0)


def timed(path, n, headers):
    c = http.client.HTTPConnection(url.hostname, url.port)
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        c.request("GET", path, headers=headers)
        r = c.getresponse()
        r.read()
        assert r.status == 200, (path, r.status)
        out.append((time.perf_counter() - t0) * 1000)
    out.sort()
    return statistics.median(out), out[int(len(out) * 0.9)]


def stored_bytes():
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    pages, free, size = (db.execute(f"PRAGMA {p}").fetchone()[0] for p in ("page_count", "freelist_count", "page_size"))
    wal = os.path.getsize(db_path + "-wal") if os.path.exists(db_path + "-wal") else 0
    spans = db.execute("SELECT COUNT(*) FROM spans").fetchone()[0]
    return (pages - free) * size + wal, spans


# Ingest: 200 batches (102,400 spans), encoded beforehand.
timed_batches = min(200, max(1, total // BATCH))
print(f"encoding {timed_batches} batches of {BATCH} spans ...", flush=True)
bodies = [batch() for _ in range(timed_batches)]
size_before, _ = stored_bytes()
secs = post_all(bodies, exporters)
spans_in = timed_batches * BATCH
print(f"ingest: {spans_in} spans in {secs:.2f} s with {exporters} exporters: "
      f"{spans_in / secs:,.0f} spans/s, {timed_batches / secs:,.1f} exports/s "
      f"({sum(map(len, bodies)) / timed_batches / 1024:.0f} KiB each)")
health = get_rate("/healthz", 4000, exporters, {})
print(f"  GET /healthz in the same run: {health:,.0f} requests/s "
      f"(an export of 512 spans costs {health / (timed_batches / secs):.0f} health checks)")
time.sleep(1.5)
size_after, stored = stored_bytes()
print(f"storage: {(size_after - size_before) / spans_in:.0f} bytes per span "
      f"(database and WAL, {stored} spans stored)")

# Fill up to `total` (untimed), in chunks of 100 batches.
filled = spans_in
while filled + BATCH <= total:
    n = min(100, (total - filled) // BATCH)
    post_all([batch() for _ in range(n)], exporters)
    filled += n * BATCH
    if filled % (BATCH * 1000) < BATCH * 100:
        print(f"  {filled:,} spans stored ...", flush=True)
size_all, stored = stored_bytes()
print(f"stored: {stored:,} spans, {size_all / 2**30:.2f} GiB, {size_all / max(stored, 1):.0f} bytes per span")

# One trace of 200 spans, read back and drawn.
big = ExportTraceServiceRequest()
big.ParseFromString(batch(traces_of=200))
spans = list(big.resource_spans[0].scope_spans[0].spans)[:200]
del big.resource_spans[0].scope_spans[0].spans[:]
big.resource_spans[0].scope_spans[0].spans.extend(spans)
post_all([big.SerializeToString()], 1)
trace = spans[0].trace_id.hex()
cookie = {"Cookie": session}
c = http.client.HTTPConnection(url.hostname, url.port)
c.request("GET", f"/api/v1/traces/{trace}", headers=cookie)
got = json.loads(c.getresponse().read())
assert len(got["spans"]) == 200, len(got["spans"])
for label, path in [("API GET /api/v1/traces/{id} (200 spans)", f"/api/v1/traces/{trace}"),
                    ("page GET /traces/{id} (200-span waterfall)", f"/traces/{trace}"),
                    ("API GET /api/v1/traces?service=bench-agent", "/api/v1/traces?service=bench-agent"),
                    ("API GET /api/v1/traces?status=error&min_duration_ms=40", "/api/v1/traces?status=error&min_duration_ms=40"),
                    ("GET /healthz", "/healthz")]:
    p50, p90 = timed(path, 40, cookie)
    print(f"{label}: p50 {p50:.1f} ms, p90 {p90:.1f} ms")
