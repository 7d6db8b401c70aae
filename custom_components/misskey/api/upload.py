"""Uploads that stream their data a chunk at a time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import IO, Final

from aiohttp.payload import AsyncIterablePayload

from .errors import MisskeyUploadSourceError

UPLOAD_CHUNK_SIZE: Final = 64 * 1024


type UploadData = bytes | AsyncIterable[bytes] | IO[bytes]


class UploadStream:
    """Feeds an upload a chunk at a time and remembers why the data stopped."""

    def __init__(
        self, data: UploadData, size: int | None, on_progress: Callable[[], None]
    ) -> None:
        """Send ``data``, checking it against ``size``; call ``on_progress`` per chunk."""
        self._data = data
        self._size = size
        self._on_progress = on_progress
        self.error: Exception | None = None

    async def chunks(self) -> AsyncIterator[bytes]:
        """Yield the data a chunk at a time."""
        sent = 0
        try:
            async for chunk in read_chunks(self._data):
                if not chunk:
                    continue
                sent += len(chunk)
                self._check_size(sent, final=False)
                self._on_progress()
                yield chunk
            self._check_size(sent, final=True)
            self._on_progress()
        except Exception as err:
            self.error = err
            raise

    def _check_size(self, sent: int, *, final: bool) -> None:
        if self._size is None:
            return
        if sent > self._size:
            raise MisskeyUploadSourceError(
                f"the data is longer than the declared {self._size} bytes"
            )
        if final and sent != self._size:
            raise MisskeyUploadSourceError(
                f"the data has {sent} bytes, not the declared {self._size}"
            )


async def read_chunks(data: UploadData) -> AsyncIterator[bytes]:
    """Yield ``data`` in chunks; a file object is read in the default executor."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        view = memoryview(data)
        for start in range(0, len(view), UPLOAD_CHUNK_SIZE):
            yield bytes(view[start : start + UPLOAD_CHUNK_SIZE])
    elif isinstance(data, AsyncIterable):
        async for chunk in data:
            yield chunk
    else:
        loop = asyncio.get_running_loop()
        while chunk := await loop.run_in_executor(None, data.read, UPLOAD_CHUNK_SIZE):
            yield chunk


class StreamPayload(AsyncIterablePayload):
    """A streamed body part whose size may be known in advance."""

    def __init__(
        self, value: AsyncIterable[bytes], *, size: int | None, content_type: str
    ) -> None:
        """Stream ``value``; with ``size`` the part has a Content-Length."""
        super().__init__(value, content_type=content_type)
        self._size = size
