"""Parses Prometheus text exposition from stdin with prometheus_client's own
parser and prints the families as one JSON document:
{"families": [{"name", "type", "documentation", "samples": [{"name", "labels", "value"}]}]}.
A parse error exits 1 with the message on stderr."""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families


def main():
    text = sys.stdin.read()
    try:
        families = [
            {
                "name": family.name,
                "type": family.type,
                "documentation": family.documentation,
                "samples": [
                    {"name": s.name, "labels": dict(s.labels), "value": s.value}
                    for s in family.samples
                ],
            }
            for family in text_string_to_metric_families(text)
        ]
    except Exception as e:  # the parser raises ValueError and friends
        print(f"parse error: {e!r}", file=sys.stderr)
        sys.exit(1)
    print(json.dumps({"families": families}, allow_nan=False))


if __name__ == "__main__":
    main()
