"""Running a load's requests side by side on the shared pool, and waiting for all of them."""

from __future__ import annotations

from concurrent.futures import Future
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from concurrent.futures import Executor

T = TypeVar("T")
R = TypeVar("R")


def wait_all(
    futures: Iterable[Future[R]], on_result: Callable[[R], object] | None = None
) -> list[R]:
    """Wait for every future, then re-raise the first failure.

    Args:
        futures: Submitted work.
        on_result: Told each successful result as it is collected (also when another fails).

    Returns:
        Results in submission order.

    Raises:
        BaseException: The first failure, once every future finished.
    """
    results: list[R] = []
    error: BaseException | None = None
    for future in futures:
        # Wait for every job so nothing is still writing when the batch reports back.
        try:
            results.append(future.result())
        except BaseException as exc:  # noqa: BLE001
            error = error or exc
        else:
            if on_result is not None:
                on_result(results[-1])
    if error is not None:
        raise error
    return results


def run_all(executor: Executor, function: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """Run ``function`` over ``items`` concurrently and re-raise the first failure.

    The first item runs in the calling thread, which waits for all of them anyway: an async
    job that polls SFMC then holds no pool thread that another job's upload is waiting for.

    Args:
        executor: Shared thread pool.
        function: Work for one item.
        items: Inputs.

    Returns:
        Results in input order.
    """
    pending = list(items)
    if not pending:
        return []
    others = [executor.submit(function, item) for item in pending[1:]]
    here: Future[R] = Future()
    try:
        here.set_result(function(pending[0]))
    except BaseException as exc:  # noqa: BLE001 - re-raised by wait_all, after the others
        here.set_exception(exc)
    return wait_all([here, *others])


def chunk_by_size(encoded: Sequence[bytes], max_items: int, max_bytes: int) -> list[range]:
    """Split encoded items into consecutive ranges within item and byte limits.

    Args:
        encoded: Encoded items.
        max_items: Most items per chunk.
        max_bytes: Most bytes per chunk (an item larger than this gets a chunk alone).

    Returns:
        Index ranges, in order, covering every item once.
    """
    chunks: list[range] = []
    start = 0
    size = 0
    for index, item in enumerate(encoded):
        item_size = len(item) + 1
        if index > start and (index - start >= max_items or size + item_size > max_bytes):
            chunks.append(range(start, index))
            start, size = index, 0
        size += item_size
    if start < len(encoded):
        chunks.append(range(start, len(encoded)))
    return chunks
