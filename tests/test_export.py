"""Export lines: the fast byte-formatted loop writes exactly what the plain one does."""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson
from hypothesis import given
from hypothesis import strategies as st

from consent_ledger.reports.export import jsonl_line, jsonl_lines

if TYPE_CHECKING:
    from consent_ledger.storage.log import StoredRow

names = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", min_size=1)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
rows = st.tuples(
    st.integers(1, 2**53),
    st.uuids().map(str),
    st.integers(1, 2**31),
    st.tuples(names, names).map(lambda n: f"consent-ledger:{n[0]}.{n[1]}"),
    json_values.map(orjson.dumps),
)


@given(st.lists(rows, max_size=5))
def test_the_export_loop_writes_what_jsonl_line_writes(page: list[StoredRow]) -> None:
    assert jsonl_lines(page) == [jsonl_line(row) for row in page]


@given(rows)
def test_an_export_line_is_json_holding_the_stored_event(row: StoredRow) -> None:
    position, stream_id, version, topic, state = row

    line = orjson.loads(jsonl_lines([row])[0])

    assert line == {
        "position": position,
        "stream_type": topic.split(":")[1].split(".")[0],
        "stream_id": stream_id,
        "stream_version": version,
        "event_type": topic.rsplit(".", 1)[1],
        "event": orjson.loads(state),
    }
