"""Exports a small trace to agentry with the OpenTelemetry Python SDK's
OTLP/HTTP exporter, as an instrumented agent would.

    python3 export_traces.py BASE_URL API_KEY [gzip|none]

Prints the trace id (32 hex digits) and exits 0 once the export succeeded.
"""
import sys

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export import SpanExportResult

base, key = sys.argv[1], sys.argv[2]
compression = Compression.Gzip if len(sys.argv) > 3 and sys.argv[3] == "gzip" else Compression.NoCompression
exporter = OTLPSpanExporter(
    endpoint=f"{base}/v1/traces",
    headers={"Authorization": f"Bearer {key}"},
    compression=compression,
)
results = []
original = exporter.export


def export(spans):
    r = original(spans)
    results.append(r)
    return r


exporter.export = export
provider = TracerProvider(resource=Resource.create({"service.name": "billing-agent"}))
provider.add_span_processor(SimpleSpanProcessor(exporter))
tracer = provider.get_tracer("billing")
with tracer.start_as_current_span("run_workflow", attributes={"workflow": "billing"}) as root:
    with tracer.start_as_current_span("call_tool", attributes={"gen_ai.tool.name": "search"}) as child:
        child.add_event("retry", {"attempt": 2})
        child.set_status(trace.Status(trace.StatusCode.ERROR, "upstream timed out"))
    trace_id = format(root.get_span_context().trace_id, "032x")
provider.shutdown()
if results and all(r == SpanExportResult.SUCCESS for r in results):
    print(trace_id, flush=True)
    sys.exit(0)
print("export failed:", results, file=sys.stderr)
sys.exit(1)
