"""Runs the postgres part of a generator file and prints the keys it makes.

Usage: python3 generator_run.py FILE ENVIRONMENT [COMPONENT]

Imports FILE (its `__main__` block does not run) and calls, whichever the file
has: the `_postgres` method of the class that defines it (on an instance made
without its constructor: `secrets`, `environment` and `regenerate` set by hand),
`generate_postgres_secrets()`, or the module-level function that calls
`set_generated_secret`, with a fresh secrets dict. Prints one line of JSON:
{"key": "value", ...} for the postgres component.

With COMPONENT, runs the class's whole `generate()` instead and prints that
component's keys, then postgres' keys prefixed with `postgres.`.
"""

import importlib.util
import inspect
import json
import sys
from collections import defaultdict


def main():
    path, environment = sys.argv[1], sys.argv[2]
    component = sys.argv[3] if len(sys.argv) > 3 else None
    spec = importlib.util.spec_from_file_location("generator_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for _, cls in inspect.getmembers(module, inspect.isclass):
        if "_postgres" in cls.__dict__:
            obj = cls.__new__(cls)
            obj.secrets = defaultdict(dict)
            obj.environment = environment
            obj.regenerate = False
            if component:
                obj.generate()
                out = dict(obj.secrets[component])
                out.update({f"postgres.{k}": v for k, v in obj.secrets["postgres"].items()})
                print(json.dumps(out))
                return
            obj._postgres()
            print(json.dumps(dict(obj.secrets["postgres"])))
            return
    if hasattr(module, "generate_postgres_secrets"):
        print(json.dumps(module.generate_postgres_secrets()))
        return
    for _, fn in inspect.getmembers(module, inspect.isfunction):
        if "set_generated_secret" in fn.__code__.co_names:
            s = defaultdict(dict)
            fn(s)
            print(json.dumps(dict(s["postgres"])))
            return
    sys.exit(f"{path}: no postgres secrets found")


main()
