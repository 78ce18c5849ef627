#!/usr/bin/env python3
"""Generate the secrets of one environment."""

import json
import os
import secrets
import sys
from collections import defaultdict


def set_secret(s, component, name, value):
    s[component][name] = value


def set_generated_secret(s, component, name, value):
    if name not in s[component]:
        s[component][name] = value


def generate(s):
    set_generated_secret(s, "gafaelfawr", "redis-password", secrets.token_hex(32))
    set_generated_secret(s, "postgres", "gafaelfawr_password", secrets.token_hex(32))
    set_generated_secret(s, "postgres", "jupyterhub_password", secrets.token_hex(32))
    set_generated_secret(s, "postgres", "narrativelog_password", secrets.token_hex(32))
    set_generated_secret(s, "postgres", "root_password", secrets.token_hex(64))
    set_secret(s, "gafaelfawr", "database-password", s["postgres"]["gafaelfawr_password"])
    set_secret(s, "nublado", "hub_db_password", s["postgres"]["jupyterhub_password"])


if __name__ == "__main__":
    s = defaultdict(dict)
    if os.path.isdir("secrets"):
        for name in os.listdir("secrets"):
            with open(os.path.join("secrets", name)) as f:
                s[name] = json.load(f)
    generate(s)
    os.makedirs("secrets", exist_ok=True)
    for component, values in s.items():
        with open(os.path.join("secrets", component), "w") as f:
            json.dump(values, f)
    sys.exit(0)
