#!/usr/bin/env python3
"""Sends a few Dubbo calls that must fail with dubbo-ssl-python (direct host,
no ZooKeeper) and prints, one JSON line per case, the error the library
reports. Same cases and output as `node error_cases.js --protocol dubbo`.
Exit 0 when every case failed with an error, 1 otherwise."""

import argparse
import json
import logging
import os
import sys
import threading
import time

SERVICE = "org.apache.dubbo.samples.DemoService"
VERSION = "1.0.0"
CASES = {
    "unknown-service": ("com.meshgate.test.NoSuchService", VERSION, "sayHello"),
    "unknown-version": (SERVICE, "9.9.9", "sayHello"),
    "unknown-method": (SERVICE, VERSION, "noSuchMethod"),
}


def main(argv):
    p = argparse.ArgumentParser(prog="error_cases.py", description=__doc__)
    p.add_argument("--target", required=True, help="127.0.0.1:PORT (loopback only)")
    p.add_argument("--case", default="all", choices=["all"] + sorted(CASES))
    p.add_argument("--timeout-ms", type=int, default=3000)
    p.add_argument("--group", default="")
    args = p.parse_args(argv)
    host, _, port = args.target.rpartition(":")
    if not (host.startswith("127.") or host == "localhost") or not port.isdigit():
        p.error("--target must be a loopback HOST:PORT")
    host = "127.0.0.1" if host == "localhost" else host
    names = list(CASES) if args.case == "all" else [args.case]
    logging.basicConfig(level=logging.CRITICAL, stream=sys.stderr)

    def hard_stop():
        sys.stderr.write("error_cases.py: hard deadline\n")
        os._exit(3)

    t = threading.Timer((args.timeout_ms / 1000.0 + 1) * len(names) + 5, hard_stop)
    t.daemon = True
    t.start()

    from dubbo_ssl.client import DubboClient

    all_failed = True
    for name in names:
        service, version, method = CASES[name]
        client = DubboClient(interface=service, group=args.group, version=version,
                             dubbo_version="2.0.2", host="{}:{}".format(host, port), verify=None)
        line = {"case": name, "protocol": "dubbo", "library": "dubbo-ssl-python",
                "service": service + ":" + version, "method": method}
        start = time.monotonic()
        try:
            value = client.call(method, ["probe"], timeout=args.timeout_ms / 1000.0)
            line.update(outcome="ok", value=value)
            all_failed = False
        except Exception as err:
            line.update(outcome="error", name=type(err).__name__, message=str(err).strip())
        line["elapsed_ms"] = int((time.monotonic() - start) * 1000)
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()
    os._exit(0 if all_failed else 1)


if __name__ == "__main__":
    main(sys.argv[1:])
