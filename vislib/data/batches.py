"""The one decoding pipeline of vislib: pictures are decoded and preprocessed a batch ahead.

Decoding and resizing run in a small thread pool (Pillow releases the GIL while it decodes and
resamples; threads, unlike DataLoader worker processes, need no pickling of the collection and no
fork of a server process full of threads), one batch ahead of the forward pass, so the network
never waits for the disk or for JPEG decoding. Classification, feature extraction and the patch
search all read pictures through it.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import islice

from PIL import Image


def _workers() -> int:
    # Enough threads to decode a batch faster than a GPU eats it; on a small CPU the forward
    # pass needs the cores, and there decoding is cheap next to it anyway.
    return max(1, min(8, (os.cpu_count() or 2)))


def _batches(items: Iterable, size: int) -> Iterator[list]:
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


def batches_ahead(items: Iterable, prepare: Callable, batch_size: int) -> Iterator[tuple[list, list]]:
    """Yield (batch of items, their prepared values), preparing the next batch meanwhile."""
    batches = _batches(items, batch_size)
    with ThreadPoolExecutor(_workers(), thread_name_prefix="vislib-decode") as pool:
        def submit(batch: list) -> tuple[list, list[Future]]:
            return batch, [pool.submit(prepare, item) for item in batch]

        ahead = submit(next(batches, []))
        try:
            while ahead[0]:
                (batch, futures), ahead = ahead, submit(next(batches, []))
                yield batch, [f.result() for f in futures]
        finally:
            # A consumer that stops early should not wait for a batch nobody will read.
            for f in ahead[1]:
                f.cancel()




def prefetched(collection: Sequence, prepare: Callable[[Image.Image], object], batch_size: int,
               indices: Sequence[int] | None = None) -> Iterator[tuple[list[int], list]]:
    """Yield (positions, prepared pictures) of a collection batch by batch (all, or `indices`)."""
    positions = range(len(collection)) if indices is None else indices
    return batches_ahead(positions, lambda i: prepare(collection[i][0]), batch_size)


def chunks(n: int, batch_size: int, batches: int = 8, first: int = 0) -> list[tuple[int, int]]:
    """[start, stop) bounds of whole batches counted from 0, `batches` batches a chunk, from `first`."""
    size = batch_size * batches
    return [(s, min(s + size, n)) for s in range(first, n, size)]
