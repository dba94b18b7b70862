#!/usr/bin/env python3
"""Writes one real ECS Task State Change the deployment watchdog received as a test fixture.

Reads `aws logs filter-log-events --output json` from standard input (the watchdog's log group,
filtered on "task event received"), takes the newest `raw_event` field of its JSON log lines
(tracing's JSON format: {"fields": {"raw_event": "...", "message": ...}}) and writes it,
pretty-printed, to the path given. Exit 1 when the log holds no such event.
"""
import json
import sys


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: record-task-event.py OUT.json < filter-log-events.json", file=sys.stderr)
        return 2
    found = None
    for entry in json.load(sys.stdin).get("events", []):
        try:
            line = json.loads(entry["message"])
            event = json.loads(line["fields"]["raw_event"])
        except (KeyError, TypeError, ValueError):
            continue
        if event.get("detail-type") == "ECS Task State Change":
            found = event  # events come oldest first: keep the newest
    if found is None:
        print("record-task-event: no ECS Task State Change in the watchdog's log", file=sys.stderr)
        return 1
    with open(sys.argv[1], "w", encoding="utf-8") as out:
        json.dump(found, out, indent=2)
        out.write("\n")
    print(f"record-task-event: wrote {sys.argv[1]} ({found['detail'].get('stopCode')})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
