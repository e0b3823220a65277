"""The recording store: finished spans in SQLite (the default) or PostgreSQL.

Write with :class:`StoreExporter` behind a batch processor (or hand rows to a
:class:`StoreWriter` yourself), read with :func:`open`::

    import spanline
    from spanline.export import BatchSpanProcessor
    from spanline.store import StoreExporter

    spanline.tracer.add_processor(BatchSpanProcessor(StoreExporter("traces.db")))
    ...
    with spanline.store.open("traces.db") as store:
        for summary in store.traces(status="error").items:
            print(summary.trace_id, summary.root_name, summary.duration_ns)

:func:`rows_from_otlp` turns decoded OTLP (spans from any tracer) into rows for a
writer.  The schema, queries, retention and durability are described in ``docs/store.md``.
Importing this package needs nothing beyond the standard library; PostgreSQL needs
``psycopg`` (``pip install 'spanline[postgres]'``), imported only when used.
"""

from __future__ import annotations

from spanline.core.location import (
    DEFAULT_STORE,
    ENVIRONMENT_VARIABLE,
    StoreConfigError,
    StoreLocation,
    resolve_store,
)
from spanline.store.backend import StoreError
from spanline.store.convert import row_from_span, rows_from_spans
from spanline.store.exporter import StoreExporter
from spanline.store.otlp import OtlpRows, rows_from_otlp
from spanline.store.query import Changes, OperationStats, Page, Store, TraceSummary, open
from spanline.store.retention import Retention
from spanline.store.row import COLUMNS, SpanRow, json_text
from spanline.store.schema import SCHEMA_VERSION, SchemaTooNewError
from spanline.store.tree import TreeNode, build_tree
from spanline.store.writer import StoreWriter

__all__ = [
    "COLUMNS",
    "DEFAULT_STORE",
    "ENVIRONMENT_VARIABLE",
    "SCHEMA_VERSION",
    "Changes",
    "OperationStats",
    "OtlpRows",
    "Page",
    "Retention",
    "SchemaTooNewError",
    "SpanRow",
    "Store",
    "StoreConfigError",
    "StoreError",
    "StoreExporter",
    "StoreLocation",
    "StoreWriter",
    "TraceSummary",
    "TreeNode",
    "build_tree",
    "json_text",
    "open",
    "resolve_store",
    "row_from_span",
    "rows_from_otlp",
    "rows_from_spans",
]
