#!/usr/bin/env python3
"""Evaluates a webhook matchCondition (CEL) the way the API server would, with cel-python.

usage: cel_check.py EXPRESSION < cases.json   where cases is a list of
{"operation": "CREATE"|"UPDATE", "object": {...}, "oldObject": {...}|null};
prints a JSON list of booleans (or {"error": ...}).
"""

import json
import sys

import celpy


def main():
    env = celpy.Environment()
    try:
        program = env.program(env.compile(sys.argv[1]))
    except Exception as e:  # noqa: BLE001 - report any compile error to the caller
        print(json.dumps({"error": f"compile: {e}"}))
        return
    out = []
    for case in json.load(sys.stdin):
        activation = {
            "object": celpy.json_to_cel(case["object"]),
            "oldObject": celpy.json_to_cel(case.get("oldObject")),
            "request": celpy.json_to_cel({"operation": case["operation"]}),
        }
        try:
            out.append(bool(program.evaluate(activation)))
        except Exception as e:  # noqa: BLE001
            print(json.dumps({"error": f"evaluate: {e}"}))
            return
    print(json.dumps(out))


if __name__ == "__main__":
    main()
