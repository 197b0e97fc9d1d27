"""Faust agents, one module per stage: ingest (decode, price, redact), dedupe, cluster,
metrics, decide, sink. Each module has register(app, ctx)."""
