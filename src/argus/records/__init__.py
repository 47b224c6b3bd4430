"""Prediction records: what was asked, of which image, by which model versions, with what
answer and timings; written off the event loop (``writer``), read by filter or by SQL confined
to that table (``query``, ``guard``)."""

from __future__ import annotations

from argus.records.guard import check_where
from argus.records.query import MAX_LIMIT, find_records, parse_time, query_records
from argus.records.writer import RecordWriter, record_row

__all__ = [
    "MAX_LIMIT",
    "RecordWriter",
    "check_where",
    "find_records",
    "parse_time",
    "query_records",
    "record_row",
]
