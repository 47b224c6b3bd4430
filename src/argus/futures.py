"""Settling asyncio futures that several waiters may share, or none may be left to read."""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

T = TypeVar("T")


def settle(future: asyncio.Future[T], value: Any = None, error: BaseException | None = None
           ) -> None:
    """Give ``future`` its value (or ``error``) unless it is already done. An error is marked
    retrieved: nobody may be waiting for it any more (a request given up on)."""
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
        future.exception()
    else:
        future.set_result(value)


def chain(source: asyncio.Future[T], target: asyncio.Future[T]) -> None:
    """Settle ``target`` as ``source`` was settled (a done callback of ``source``)."""
    if source.cancelled():
        target.cancel()
    elif source.exception() is not None:
        settle(target, error=source.exception())
    else:
        settle(target, source.result())
