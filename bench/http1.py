"""The load generators' HTTP/1.1 client side: asyncio streams, no client library, so driving the
server costs the shared cores as little as possible."""

from __future__ import annotations

import asyncio


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   request: bytes) -> bytes:
    """Send `request` on a keep-alive connection and read its whole response (headers, then a
    body of Content-Length bytes); returns the status line."""
    writer.write(request)
    status = await reader.readline()
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    await reader.readexactly(length)
    return status
