"""gRPC through meshgate with the real grpcio library (tests/grpc_proxy.rs).

`grpc_echo.py server [PORT]`: an echo service `test.Echo` (raw bytes, no
protobuf compile step) on 127.0.0.1:PORT (default 0: a free port); prints
`READY port=N`.
  Unary          echo:<req>; b"fail" aborts with INVALID_ARGUMENT "bad input";
                 b"sleep:<secs>" sleeps first.
  ServerStream   <req>-0, <req>-1, <req>-2
  ClientStream   the requests joined with "+"
  Bidi           bidi:<req> for each request
`grpc_echo.py client HOST:PORT`: calls all of them through the gateway, plus
a deadline, an error status, and a method no route matches; prints one JSON
object with what each call returned.
`grpc_echo.py call HOST:PORT [KEY=VALUE ...]`: one Unary call with the
given metadata (e.g. a header a gateway filter matches); prints its outcome
as one JSON object.
"""

import json
import sys
import time
from concurrent import futures

import grpc

SERVICE = "/test.Echo/"


def ident(x):
    return x


def unary(request, context):
    if request == b"fail":
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "bad input")
    if request.startswith(b"sleep:"):
        time.sleep(float(request[len(b"sleep:"):]))
    return b"echo:" + request


def server_stream(request, context):
    for i in range(3):
        yield request + b"-%d" % i


def client_stream(requests, context):
    return b"+".join(requests)


def bidi(requests, context):
    for request in requests:
        yield b"bidi:" + request


class Handler(grpc.GenericRpcHandler):
    def service(self, details):
        method = details.method
        if method == SERVICE + "Unary":
            return grpc.unary_unary_rpc_method_handler(unary, ident, ident)
        if method == SERVICE + "ServerStream":
            return grpc.unary_stream_rpc_method_handler(server_stream, ident, ident)
        if method == SERVICE + "ClientStream":
            return grpc.stream_unary_rpc_method_handler(client_stream, ident, ident)
        if method == SERVICE + "Bidi":
            return grpc.stream_stream_rpc_method_handler(bidi, ident, ident)
        return None


def serve(port):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers((Handler(),))
    port = server.add_insecure_port("127.0.0.1:%d" % port)
    server.start()
    print("READY port=%d" % port, flush=True)
    server.wait_for_termination(timeout=120)


def outcome(call):
    try:
        value = call()
        if isinstance(value, bytes):
            return {"ok": value.decode()}
        return {"ok": [v.decode() for v in value]}
    except grpc.RpcError as e:
        return {"code": e.code().name, "details": e.details()}


def client(target):
    channel = grpc.insecure_channel(target)
    grpc.channel_ready_future(channel).result(timeout=10)
    unary_call = channel.unary_unary(SERVICE + "Unary")
    results = {
        "unary": outcome(lambda: unary_call(b"hi", timeout=10)),
        "server_stream": outcome(
            lambda: list(channel.unary_stream(SERVICE + "ServerStream")(b"s", timeout=10))
        ),
        "client_stream": outcome(
            lambda: channel.stream_unary(SERVICE + "ClientStream")(
                iter([b"a", b"b", b"c"]), timeout=10
            )
        ),
        "bidi": outcome(
            lambda: list(
                channel.stream_stream(SERVICE + "Bidi")(iter([b"x", b"y"]), timeout=10)
            )
        ),
        "error": outcome(lambda: unary_call(b"fail", timeout=10)),
        "deadline": outcome(lambda: unary_call(b"sleep:3", timeout=0.5)),
        "no_route": outcome(
            lambda: channel.unary_unary("/other.Service/Method")(b"x", timeout=10)
        ),
    }
    # The gateway still serves after the deadline and the error.
    results["after"] = outcome(lambda: unary_call(b"again", timeout=10))
    print(json.dumps(results), flush=True)


def call(target, metadata):
    channel = grpc.insecure_channel(target)
    grpc.channel_ready_future(channel).result(timeout=10)
    pairs = [tuple(m.split("=", 1)) for m in metadata]
    unary_call = channel.unary_unary(SERVICE + "Unary")
    print(json.dumps(outcome(lambda: unary_call(b"hi", timeout=10, metadata=pairs))), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "server":
        serve(int(sys.argv[2]) if len(sys.argv) > 2 else 0)
    elif sys.argv[1] == "call":
        call(sys.argv[2], sys.argv[3:])
    else:
        client(sys.argv[2])
