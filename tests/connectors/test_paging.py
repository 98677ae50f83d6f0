"""The paging rules without a network (sans-I/O), and the in-order concurrent driver over a plain callable."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.connectors.paging import OffsetPaging, PageRequest, PageResult, SeenKeys, stream_pages
from reconciler.errors import SnapshotIncomplete, TransientRemoteError


def test_single_page_needs_no_follow_up() -> None:
    paging = OffsetPaging(100, what="t")
    assert paging.first() == PageRequest(1, 100)
    assert paging.receive(PageResult(1, total=42, rows=42)) == []
    assert paging.done
    paging.finish(42)


def test_page_one_announces_every_other_page() -> None:
    paging = OffsetPaging(100, what="t")
    paging.first()
    follow = paging.receive(PageResult(1, total=250, rows=100))
    assert follow == [PageRequest(2, 100), PageRequest(3, 100)]
    assert paging.receive(PageResult(3, total=250, rows=50)) == []
    assert paging.receive(PageResult(2, total=250, rows=100)) == []
    assert paging.done
    paging.finish(250)


def test_empty_listing_is_complete() -> None:
    paging = OffsetPaging(100, what="t")
    paging.first()
    assert paging.receive(PageResult(1, total=0, rows=0)) == []
    paging.finish(0)


def test_fewer_rows_than_announced_is_incomplete() -> None:
    paging = OffsetPaging(10, what="ozmap boxes")
    paging.first()
    paging.receive(PageResult(1, total=15, rows=10))
    paging.receive(PageResult(2, total=15, rows=3))
    with pytest.raises(SnapshotIncomplete, match="received 13 distinct rows, the server announced 15"):
        paging.finish(13)


def test_more_distinct_rows_than_announced_is_incomplete_too() -> None:
    paging = OffsetPaging(10, what="t")
    paging.first()
    paging.receive(PageResult(1, total=5, rows=6))
    with pytest.raises(SnapshotIncomplete):
        paging.finish(6)


def test_empty_first_page_with_a_total_is_incomplete() -> None:
    paging = OffsetPaging(10, what="t")
    paging.first()
    with pytest.raises(SnapshotIncomplete, match="page 1 came back empty"):
        paging.receive(PageResult(1, total=3, rows=0))


def test_empty_middle_page_is_incomplete() -> None:
    paging = OffsetPaging(10, what="t")
    paging.first()
    paging.receive(PageResult(1, total=30, rows=10))
    with pytest.raises(SnapshotIncomplete, match="page 2 of 3 came back empty"):
        paging.receive(PageResult(2, total=30, rows=0))


def test_total_changing_while_paging_is_incomplete() -> None:
    paging = OffsetPaging(10, what="t")
    paging.first()
    paging.receive(PageResult(1, total=30, rows=10))
    with pytest.raises(SnapshotIncomplete, match="changed from 30 to 29"):
        paging.receive(PageResult(2, total=29, rows=10))


def test_finish_before_the_last_page_is_incomplete() -> None:
    paging = OffsetPaging(10, what="t")
    paging.first()
    paging.receive(PageResult(1, total=30, rows=10))
    with pytest.raises(SnapshotIncomplete, match="before the last page"):
        paging.finish(10)


def test_a_server_capping_the_page_size_is_followed() -> None:
    paging = OffsetPaging(1000, what="t")
    paging.first()
    follow = paging.receive(PageResult(1, total=250, rows=100))
    assert follow == [PageRequest(2, 100), PageRequest(3, 100)]


def test_rp_overflow_does_not_change_the_page_plan() -> None:
    paging = OffsetPaging(10, what="t")
    paging.first()
    assert paging.receive(PageResult(1, total=25, rows=13)) == [PageRequest(2, 10), PageRequest(3, 10)]


def test_unrequested_page_is_a_bug() -> None:
    paging = OffsetPaging(10, what="t")
    paging.first()
    with pytest.raises(ValueError):
        paging.receive(PageResult(2, total=10, rows=10))


# -- the driver over a plain fetch callable (a fake server in-process: rows are ids) ----------------------------

pytestmark_anyio = pytest.mark.anyio


def _server(
    ids: Sequence[str], *, overflow: int = 0, total: int | None = None, delays: dict[int, float] | None = None
) -> Callable[[PageRequest], Awaitable[tuple[int, list[str]]]]:
    async def fetch(request: PageRequest) -> tuple[int, list[str]]:
        if delays and request.number in delays:
            await anyio.sleep(delays[request.number])
        start = (request.number - 1) * request.size
        return (len(ids) if total is None else total), list(ids[start : start + request.size + overflow])

    return fetch


async def _collect(
    fetch: Callable[[PageRequest], Awaitable[tuple[int, list[str]]]], size: int, window: int = 4
) -> list[list[str]]:
    paging = OffsetPaging(size, what="t")
    return [page async for page in stream_pages(paging, fetch, key=str, window=window)]


@pytestmark_anyio
async def test_driver_yields_pages_in_order_even_when_they_finish_out_of_order() -> None:
    ids = [f"{i:03}" for i in range(25)]
    pages = await _collect(_server(ids, delays={2: 0.05, 3: 0.0}), size=10)
    assert pages == [ids[:10], ids[10:20], ids[20:]]


@pytestmark_anyio
async def test_driver_deduplicates_overflowing_pages() -> None:
    ids = [str(i) for i in range(25)]
    pages = await _collect(_server(ids, overflow=3), size=10)
    assert [row for page in pages for row in page] == ids


@pytestmark_anyio
async def test_driver_raises_when_rows_are_missing() -> None:
    ids = [str(i) for i in range(25)]
    with pytest.raises(SnapshotIncomplete, match="received 25 distinct rows, the server announced 27"):
        await _collect(_server(ids, total=27), size=10)


@pytestmark_anyio
async def test_transient_failure_after_page_one_becomes_snapshot_incomplete() -> None:
    ids = [str(i) for i in range(25)]
    inner = _server(ids)

    async def fetch(request: PageRequest) -> tuple[int, list[str]]:
        if request.number == 3:
            raise TransientRemoteError("x", "GET /things → 503")
        return await inner(request)

    with pytest.raises(SnapshotIncomplete, match="page 3 failed"):
        await _collect(fetch, size=10)


@pytestmark_anyio
async def test_failure_on_page_one_propagates_as_is() -> None:
    async def fetch(request: PageRequest) -> tuple[int, list[str]]:
        raise TransientRemoteError("x", "GET /things → 503")

    with pytest.raises(TransientRemoteError):
        await _collect(fetch, size=10)


@pytestmark_anyio
async def test_stopping_early_cancels_pages_in_flight() -> None:
    ids = [str(i) for i in range(100)]
    started: list[int] = []
    finished: list[int] = []
    inner = _server(ids)

    async def fetch(request: PageRequest) -> tuple[int, list[str]]:
        started.append(request.number)
        if request.number > 1:
            await anyio.sleep(5)
        finished.append(request.number)
        return await inner(request)

    paging = OffsetPaging(10, what="t")
    stream = stream_pages(paging, fetch, key=str, window=3)
    first = await stream.__anext__()
    assert first == ids[:10]
    await anyio.sleep(0.01)  # the consumer works on page 1 while pages 2-4 travel
    await stream.aclose()
    assert finished == [1]
    assert started == [1, 2, 3, 4]  # window 3: pages 2-4 in flight, none finished


@settings(max_examples=200, deadline=None)
@given(pages=st.lists(st.lists(st.text(alphabet="abcé", max_size=3), max_size=12), max_size=30))
def test_seen_keys_answers_as_a_set_of_the_keys_would(pages: list[list[str]]) -> None:
    seen, reference = SeenKeys(), set[str]()
    for page in pages:
        expected = []
        for j, key in enumerate(page):
            if key not in reference:
                reference.add(key)
                expected.append(j)
        assert seen.add(page) == expected
    assert seen.count == len(reference)


def test_seen_keys_stay_exact_across_many_merged_runs() -> None:
    seen = SeenKeys()
    for n in range(300):  # 300 pages of 7 keys, each page repeating keys of an old page and of the last one
        page = [f"k{n}-{i}" for i in range(5)] + [f"k{n // 2}-0", f"k{max(n - 1, 0)}-4"]
        fresh = seen.add(page)
        assert fresh == [0, 1, 2, 3, 4]
    assert seen.count == 300 * 5


def test_seen_keys_grow_a_slice_at_a_time_and_a_reserved_table_does_not_grow() -> None:
    # 200k keys: the table doubles past 2^16 and 2^17 slots, rehashing the old one in several slices
    keys = [f"id-{n}" for n in range(200_000)]
    seen = SeenKeys()
    for start in range(0, len(keys), 1000):
        assert seen.add(keys[start : start + 1000]) == list(range(1000))
    assert seen.add(keys[::7]) == [] and seen.count == len(keys)
    reserved = SeenKeys()
    reserved.reserve(len(keys))
    table = reserved._table
    for start in range(0, len(keys), 1000):
        reserved.add(keys[start : start + 1000])
    assert reserved._table is table and reserved.count == len(keys)
    assert reserved.add(["id-5", "new"]) == [1]
