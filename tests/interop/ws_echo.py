"""WebSocket upgrades through meshgate with the real `websockets` library
(tests/http_upgrade.rs).

`ws_echo.py server`: a WebSocket echo server on 127.0.0.1:0; prints
`READY port=N`.
  /refuse-200, /refuse-400  answered with a plain HTTP 200 / 400 (no upgrade)
  any other path            upgraded; every message is echoed as it came
                            (text as text, binary as binary), except the
                            text "close-me", after which the server closes
                            with code 4000 "bye"
`ws_echo.py client ws://HOST:PORT MODE`, MODE:
  echo    text, binary, a 1 MiB message and 500 small ones echoed; prints a
          JSON line {"open": ...}, then waits for a line on stdin before the
          close handshake (so the caller can use the gateway meanwhile);
          prints a JSON line {"closed": ...}
  errors  the refused upgrades, an upgrade routed to a dead upstream and a
          close by the upstream; prints one JSON object
"""

import asyncio
import json
import sys

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.http11 import Response

MAX = 4 * 1024 * 1024


def refuse(connection, request):
    for code in (200, 400):
        if request.path == "/refuse-%d" % code:
            body = ("refused with %d\n" % code).encode()
            headers = Headers(
                [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
            )
            return Response(code, "Refused", headers, body)
    return None


async def echo(ws):
    try:
        async for message in ws:
            if message == "close-me":
                await ws.close(4000, "bye")
                return
            await ws.send(message)
    except ConnectionClosed:
        pass


async def server():
    async with serve(echo, "127.0.0.1", 0, process_request=refuse, max_size=MAX) as srv:
        port = srv.sockets[0].getsockname()[1]
        print("READY port=%d" % port, flush=True)
        await asyncio.Future()


def emit(obj):
    print(json.dumps(obj), flush=True)


async def client_echo(base):
    async with connect(base + "/chat", max_size=MAX, open_timeout=10, close_timeout=10) as ws:
        opened = {}
        await ws.send("hello")
        opened["text"] = await ws.recv()
        binary = bytes(range(256))
        await ws.send(binary)
        got = await ws.recv()
        opened["binary"] = isinstance(got, bytes) and got == binary
        big = bytes((i * 7) % 251 for i in range(1024 * 1024))
        await ws.send(big)
        got = await ws.recv()
        opened["big"] = isinstance(got, bytes) and got == big
        opened["big_len"] = len(got)
        # 500 messages: sent all at once, then read back in order.
        for i in range(500):
            await ws.send("m-%d" % i)
        echoed = [await ws.recv() for _ in range(500)]
        opened["many"] = echoed == ["m-%d" % i for i in range(500)]
        opened["subprotocol_header"] = ws.response.headers.get("Upgrade")
        emit({"open": opened})
        # The caller uses the gateway meanwhile, then says when to close.
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        await ws.send("still there")
        after = await ws.recv()
        await ws.close()
        emit({"closed": {"after": after, "code": ws.close_code, "rcvd": ws.protocol.close_rcvd.code if ws.protocol.close_rcvd else None}})


async def refused(base, path):
    try:
        async with connect(base + path, open_timeout=10):
            return {"upgraded": True}
    except InvalidStatus as e:
        return {"status": e.response.status_code, "body": e.response.body.decode(errors="replace")}


async def client_errors(base):
    result = {}
    result["refuse_200"] = await refused(base, "/refuse-200")
    result["refuse_400"] = await refused(base, "/refuse-400")
    result["dead"] = await refused(base, "/dead/chat")
    async with connect(base + "/chat", open_timeout=10, close_timeout=10) as ws:
        await ws.send("close-me")
        try:
            await asyncio.wait_for(ws.recv(), 10)
            result["upstream_close"] = {"closed": False}
        except ConnectionClosed as e:
            result["upstream_close"] = {
                "closed": True,
                "code": e.rcvd.code if e.rcvd else None,
                "reason": e.rcvd.reason if e.rcvd else None,
            }
    emit(result)


def main():
    if sys.argv[1] == "server":
        asyncio.run(server())
    elif sys.argv[1] == "client":
        base, mode = sys.argv[2], sys.argv[3]
        if mode == "echo":
            asyncio.run(client_echo(base))
        else:
            asyncio.run(client_errors(base))
    else:
        sys.exit("usage: ws_echo.py server | client ws://HOST:PORT echo|errors")


if __name__ == "__main__":
    main()
