#!/usr/bin/env python3
"""What the calls into one module cost, from a callgrind output file.

Sums, per request, the inclusive instructions of every call made from a
function outside the module PREFIX into a function inside it (nested calls
inside the module are not counted twice), grouped by callee. Code of the
module inlined into a function outside it is not seen: keep the module's
entry points out of line (`#[inline(never)]`) to measure them.

With IDLE_OUT (a run of the same binary without load), what that run spent
(start-up, shutdown) is subtracted first, so one-off costs do not count.

Usage: callgrind_calls.py OUT PREFIX REPLIES [IDLE_OUT]
Example: callgrind_calls.py cg.out meshgate::stats:: 20946 idle.out
"""

import collections
import sys


def costs(path, prefix):
    """Instructions by entry point of the module in one callgrind file."""
    names = {}

    def name_of(value):
        # "(id) name" defines a compressed name, "(id)" refers to one.
        value = value.strip()
        if value.startswith("("):
            close = value.index(")")
            ident = value[1:close]
            rest = value[close + 1 :].strip()
            if rest:
                names[ident] = rest
            return names.get(ident, ident)
        return value

    by_entry = collections.Counter()
    caller = ""
    callee = ""
    in_call = False
    with open(path, encoding="utf-8", errors="replace") as lines:
        for line in lines:
            line = line.rstrip("\n")
            if line.startswith("fn="):
                caller = name_of(line[3:])
            elif line.startswith("cfn="):
                callee = name_of(line[4:])
            elif line.startswith("calls="):
                in_call = True
            elif line and (line[0].isdigit() or line[0] in "+-*"):
                fields = line.split()
                cost = int(fields[1]) if len(fields) > 1 else 0
                if in_call and prefix not in caller and prefix in callee:
                    by_entry[callee] += cost
                in_call = False
    return by_entry


def main():
    path, prefix, replies = sys.argv[1:4]
    replies = int(replies)
    by_entry = costs(path, prefix)
    if len(sys.argv) > 4:
        by_entry.subtract(costs(sys.argv[4], prefix))
    total = 0.0
    for entry, cost in by_entry.most_common():
        per_request = cost / replies
        total += per_request
        if abs(per_request) >= 0.5:
            print(f"{per_request:10,.1f}  {entry}")
    print(f"{total:10,.1f}  total per request in {prefix}")


if __name__ == "__main__":
    main()
