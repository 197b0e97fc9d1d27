import asyncio
import os
from pathlib import Path

from streams.process_pool import StagePool, chunks


def test_chunks_are_contiguous_ordered_and_bounded():
    items = list(range(10))
    parts = chunks(items, 3)
    assert [x for p in parts for x in p] == items
    assert [len(p) for p in parts] == [4, 3, 3]
    assert chunks(items, 4, min_chunk=5) == [items[:5], items[5:]]
    assert chunks(items[:3], 8) == [[0], [1], [2]]
    assert chunks([], 2) == []


class Doubler:
    """A stage built once per child; `died_once` makes the first call that sees -1 kill its
    process, as an out-of-memory kill would."""

    def __init__(self, factor: int, died_once: str):
        self.factor = factor
        self.died_once = Path(died_once)
        self.pid = os.getpid()

    def __call__(self, chunk, offset):
        if -1 in chunk and not self.died_once.exists():
            self.died_once.touch()
            os._exit(1)
        return [(x * self.factor + offset, self.pid) for x in chunk]


def test_results_come_back_in_order_from_child_processes(tmp_path):
    pool = StagePool(2, Doubler, 2, str(tmp_path / "unused"), min_chunk=1).start()
    try:
        parts = asyncio.run(pool.map(list(range(7)), 1))
    finally:
        pool.close()
    values = [v for part in parts for v, _ in part]
    assert values == [2 * x + 1 for x in range(7)]
    assert os.getpid() not in {pid for part in parts for _, pid in part}


def test_a_child_that_dies_mid_batch_is_replaced_and_the_batch_rerun(tmp_path):
    flag = tmp_path / "died"
    pool = StagePool(1, Doubler, 3, str(flag))
    try:
        parts = asyncio.run(pool.map([1, -1, 2], 0))
    finally:
        pool.close()
    assert flag.exists()  # the first attempt did die
    assert [v for part in parts for v, _ in part] == [3, -3, 6]
