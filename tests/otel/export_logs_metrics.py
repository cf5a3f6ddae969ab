"""Exports log records (through Python's logging, inside a span) and
metrics to agentry with the OpenTelemetry Python SDK's OTLP/HTTP exporters,
as an instrumented agent would.

    python3 export_logs_metrics.py BASE_URL API_KEY

Prints the trace id the error record belongs to and exits 0 once every
export succeeded.
"""
import logging
import sys

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExportResult, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

base, key = sys.argv[1], sys.argv[2]
headers = {"Authorization": f"Bearer {key}"}
resource = Resource.create({"service.name": "billing-agent"})
results = []


def watched(exporter):
    original = exporter.export

    def export(batch, *args, **kwargs):
        r = original(batch, *args, **kwargs)
        results.append(r)
        return r

    exporter.export = export
    return exporter


log_exporter = watched(OTLPLogExporter(endpoint=f"{base}/v1/logs", headers=headers))
logs = LoggerProvider(resource=resource)
logs.add_log_record_processor(SimpleLogRecordProcessor(log_exporter))
log = logging.getLogger("billing")
log.propagate = False
log.setLevel(logging.DEBUG)
log.addHandler(LoggingHandler(level=logging.DEBUG, logger_provider=logs))

tracer = TracerProvider(resource=resource).get_tracer("billing")
log.info("invoice batch started", extra={"batch": 7})
with tracer.start_as_current_span("charge") as span:
    log.error("payment gateway refused the charge")
    trace_id = format(span.get_span_context().trace_id, "032x")
log.debug("a chatty detail")
logs.shutdown()

metric_exporter = watched(OTLPMetricExporter(endpoint=f"{base}/v1/metrics", headers=headers))
reader = PeriodicExportingMetricReader(metric_exporter, export_interval_millis=3_600_000)
meters = MeterProvider(resource=resource, metric_readers=[reader])
meter = meters.get_meter("billing")
meter.create_counter("invoices.sent").add(3, {"region": "eu"})
meter.create_histogram("charge.duration", unit="s").record(0.25, {"region": "eu"})
meter.create_up_down_counter("queue.depth").add(5)
meters.force_flush()
meters.shutdown()

ok_values = ("SUCCESS", MetricExportResult.SUCCESS)
if len(results) >= 4 and all(getattr(r, "name", r) in ("SUCCESS",) or r in ok_values for r in results):
    print(trace_id, flush=True)
    sys.exit(0)
print("export failed:", results, file=sys.stderr)
sys.exit(1)
