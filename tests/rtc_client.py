"""Two real RTC clients editing one document in a shared server (JupyterLab 3.6 / jupyter_server_ydoc).

Run with the course image's own Python (it has y_py, ypy_websocket and tornado),
not the tooling's: `python rtc_client.py PROXY_URL ACCOUNT PATH TOKEN_A TOKEN_B TEXT`.
Client A (one group member) types TEXT into the document's shared Y text;
client B (another member, its own connection and Y document) must receive it.
Prints one JSON line: what B saw.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import urllib.request

import y_py as Y
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect
from ypy_websocket import WebsocketProvider


class _Socket:
    """The websocket shape ypy_websocket expects, over tornado's client connection."""

    def __init__(self, connection, path: str) -> None:
        self.connection = connection
        self.path = path

    def __aiter__(self):
        return self

    async def __anext__(self) -> bytes:
        message = await self.connection.read_message()
        if message is None:
            raise StopAsyncIteration
        return message

    async def send(self, message: bytes) -> None:
        await self.connection.write_message(message, binary=True)


def room_id(base: str, path: str, token: str) -> str:
    request = urllib.request.Request(
        f"{base}/api/yjs/roomid/{path}",
        method="PUT",
        data=json.dumps({"format": "text", "type": "file"}).encode(),
        headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
    )
    return urllib.request.urlopen(request, timeout=30).read().decode()


async def connect(base: str, room: str, token: str) -> tuple[Y.YDoc, WebsocketProvider, object]:
    url = base.replace("http://", "ws://") + f"/api/yjs/{room}"
    connection = await websocket_connect(HTTPRequest(url, headers={"Authorization": f"token {token}"}))
    doc = Y.YDoc()
    provider = WebsocketProvider(doc, _Socket(connection, room))
    return doc, provider, connection


async def main(proxy: str, account: str, path: str, token_a: str, token_b: str, text: str) -> dict:
    base = f"{proxy}/user/{account}"
    room = room_id(base, path, token_a)
    doc_a, _, conn_a = await connect(base, room, token_a)
    doc_b, _, conn_b = await connect(base, room, token_b)
    await asyncio.sleep(1)  # both synced with the room
    source_a = doc_a.get_text("source")
    with doc_a.begin_transaction() as txn:
        source_a.extend(txn, text)
    seen = ""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        seen = str(doc_b.get_text("source"))
        if text in seen:
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.5)  # let the server write the update to its Y store
    conn_a.close()
    conn_b.close()
    return {"room": room, "b_sees": seen}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(*sys.argv[1:7]))))
