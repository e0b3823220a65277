"""The tracing core: ids, context, spans, operations, events and collection.

Everything here is dependency-free; the public names are re-exported by
:mod:`spanline`.
"""
