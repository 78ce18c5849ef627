"""A stand-in for the `phalanx` CLI (published to no package registry), for tests.

Implements what the runbook relies on, as lsst-sqre/phalanx documents and resolves
it, run from the root of a phalanx checkout:

- `phalanx secrets sync ENV`: the applications `environments/` enables; for each,
  the keys of `secrets.yaml` (with `secrets-ENV.yaml` over it) whose `if:` holds in
  its merged values (`values.yaml`, then `values-ENV.yaml`); a `copy:` or
  `generate:` with a false `if:` does not apply. Generated keys keep their Vault
  value or get a new one, copies take their source's value once it resolved,
  static keys keep their Vault value. Any key that does not resolve: "Some secrets
  could not be resolved: app/key, ..." on stderr, exit 1, nothing written. Else
  every application's secret is written to Vault (`VAULT_ADDR`, `VAULT_TOKEN`,
  path `vaultPathPrefix/APP` of `environments/values-ENV.yaml`) through its HTTP
  API: no value is ever an argument.
- `phalanx secrets audit ENV`: reports missing or different keys and exits 1
  whenever it reports anything.
"""

import json
import os
import secrets
import sys
import urllib.error
import urllib.request
from pathlib import Path

import yaml


def load(path):
    if not path.is_file():
        return {}
    return yaml.safe_load(path.read_text()) or {}


def merge(base, over):
    out = dict(base)
    for key, value in over.items():
        if isinstance(out.get(key), dict) and isinstance(value, dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def truthy(values, setting):
    if not setting:
        return True
    for part in setting.split("."):
        if not isinstance(values, dict) or part not in values:
            return False
        values = values[part]
    return bool(values)


def environment(root, env):
    config = merge(load(root / "environments/values.yaml"), load(root / f"environments/values-{env}.yaml"))
    apps = [name for name, on in (config.get("applications") or {}).items() if on]
    return config, sorted(apps)


def required(root, env, apps):
    out = []
    for app in apps:
        base = root / "applications" / app
        values = merge(load(base / "values.yaml"), load(base / f"values-{env}.yaml"))
        specs = dict(load(base / "secrets.yaml"))
        specs.update(load(base / f"secrets-{env}.yaml"))
        for key, spec in specs.items():
            if not truthy(values, spec.get("if")):
                continue
            copy = spec.get("copy")
            if copy and not truthy(values, copy.get("if")):
                copy = None
            generate = spec.get("generate")
            if generate and not truthy(values, generate.get("if")):
                generate = None
            out.append((app, key, copy, generate))
    return out


class Vault:
    def __init__(self, prefix):
        self.addr = os.environ["VAULT_ADDR"].rstrip("/")
        self.token = os.environ["VAULT_TOKEN"]
        mount, _, rest = prefix.strip("/").partition("/")
        self.mount, self.prefix = mount, rest

    def _call(self, method, app, body=None):
        url = f"{self.addr}/v1/{self.mount}/data/{self.prefix}/{app}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("X-Vault-Token", self.token)
        try:
            with urllib.request.urlopen(request) as answer:
                return json.load(answer)
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            raise

    def read(self, app):
        answer = self._call("GET", app)
        return (answer or {}).get("data", {}).get("data") or {}

    def write(self, app, values):
        self._call("POST", app, {"data": values})


def resolve(root, env, vault):
    _, apps = environment(root, env)
    specs = required(root, env, apps)
    current = {app: vault.read(app) for app in apps}
    resolved = {}
    pending = list(specs)
    while pending:
        left = []
        for app, key, copy, generate in pending:
            if copy:
                value = resolved.get((copy["application"], copy["key"]))
            elif generate:
                value = current[app].get(key) or secrets.token_hex(32)
            else:
                value = current[app].get(key)
            if value is None:
                left.append((app, key, copy, generate))
            else:
                resolved[(app, key)] = value
        if len(left) == len(pending):
            names = ", ".join(f"{app}/{key}" for app, key, _, _ in left)
            print(f"Some secrets could not be resolved: {names}", file=sys.stderr)
            sys.exit(1)
        pending = left
    return apps, current, resolved


def main():
    if len(sys.argv) != 4 or sys.argv[1] != "secrets" or sys.argv[2] not in ("sync", "audit"):
        print("usage: phalanx secrets sync|audit ENV", file=sys.stderr)
        return 2
    command, env = sys.argv[2], sys.argv[3]
    root = Path.cwd()
    config, _ = environment(root, env)
    vault = Vault(config["vaultPathPrefix"])
    apps, current, resolved = resolve(root, env, vault)
    if command == "audit":
        report = [f"{app}/{key}" for (app, key), value in resolved.items() if current[app].get(key) != value]
        for line in report:
            print(f"Missing or different: {line}")
        return 1 if report else 0
    for app in apps:
        values = dict(current[app])
        values.update({key: value for (a, key), value in resolved.items() if a == app})
        if values != current[app]:
            vault.write(app, values)
            print(f"Updated Vault secret for {app}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
