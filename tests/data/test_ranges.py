"""spyglass.data.ranges against a plain model of RFC 9110 byte ranges, for every small case."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spyglass.data.ranges import ByteRange, requested
from spyglass.errors import RangeNotSatisfiable

sizes = st.integers(min_value=0, max_value=50)
positions = st.integers(min_value=0, max_value=60)


@given(size=sizes, first=positions, last=positions)
def test_first_last(size: int, first: int, last: int) -> None:
    header = f"bytes={first}-{last}"
    if last < first:
        assert requested(header, size) is None
    elif first >= size:
        with pytest.raises(RangeNotSatisfiable):
            requested(header, size)
    else:
        part = requested(header, size)
        assert part == ByteRange(first, min(last + 1, size))


@given(size=sizes, first=positions)
def test_open_ended(size: int, first: int) -> None:
    if first >= size:
        with pytest.raises(RangeNotSatisfiable):
            requested(f"bytes={first}-", size)
    else:
        assert requested(f"bytes={first}-", size) == ByteRange(first, size)


@given(size=sizes, suffix=positions)
def test_suffix(size: int, suffix: int) -> None:
    if suffix == 0 or size == 0:
        with pytest.raises(RangeNotSatisfiable):
            requested(f"bytes=-{suffix}", size)
    else:
        assert requested(f"bytes=-{suffix}", size) == ByteRange(max(size - suffix, 0), size)


@given(header=st.text(max_size=40), size=sizes)
def test_any_header_gives_a_range_inside_the_data_or_none_or_416(header: str, size: int) -> None:
    try:
        part = requested(header, size)
    except RangeNotSatisfiable as exc:
        assert exc.size == size
        return
    if part is not None:
        assert 0 <= part.start < part.end <= size


def test_no_header_is_the_whole_data() -> None:
    assert requested(None, 10) is None


def test_content_range_and_header_value() -> None:
    part = ByteRange(5, 10)
    assert (part.length, part.content_range(20), part.header_value()) == (5, "bytes 5-9/20", "bytes=5-9")
