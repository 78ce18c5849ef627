#!/usr/bin/env python3
"""Generate the secrets of one environment into ``secrets/<component>``."""

import argparse
import json
import os
import secrets
from collections import defaultdict
from pathlib import Path


class SecretGenerator:
    """Generates the secrets that can be generated and keeps the others.

    Parameters
    ----------
    environment : str
        The name of the environment (its domain name).
    regenerate : bool
        If `True`, regenerate every secret that can be generated.
    """

    def __init__(self, environment, regenerate):
        self.secrets = defaultdict(dict)
        self.environment = environment
        self.regenerate = regenerate

    def generate(self):
        self._postgres()
        self._gafaelfawr()
        self._nublado()

    def load(self):
        if Path("secrets").is_dir():
            for f in Path("secrets").iterdir():
                self.secrets[f.name] = json.loads(f.read_text())

    def save(self):
        os.makedirs("secrets", exist_ok=True)
        for k, v in self.secrets.items():
            with open(f"secrets/{k}", "w") as f:
                f.write(json.dumps(v))

    def _set(self, component, name, new_value):
        self.secrets[component][name] = new_value

    def _exists(self, component, name):
        return component in self.secrets and name in self.secrets[component]

    def _set_generated(self, component, name, new_value):
        if not self._exists(component, name) or self.regenerate:
            self._set(component, name, new_value)

    def _postgres(self):
        self._set_generated(
            "postgres", "jupyterhub_password", secrets.token_hex(32)
        )
        self._set_generated("postgres", "root_password", secrets.token_hex(64))
        self._set_generated(
            "postgres", "gafaelfawr_password", secrets.token_hex(32)
        )
        self._set_generated(
            "postgres", "narrativelog_password", secrets.token_hex(32)
        )
        self._set_generated(
            "postgres", "exposurelog_password", secrets.token_hex(32)
        )

    def _gafaelfawr(self):
        self._set_generated(
            "gafaelfawr", "redis-password", os.urandom(32).hex()
        )
        # Pluck the password out of the postgres portion.
        db_pass = self.secrets["postgres"]["gafaelfawr_password"]
        self._set("gafaelfawr", "database-password", db_pass)
        self._set(
            "gafaelfawr",
            "exposurelog-password",
            self.secrets["postgres"]["exposurelog_password"],
        )

    def _nublado(self):
        self._set_generated("nublado", "crypto_key", secrets.token_hex(32))
        db_password = self.secrets["postgres"]["jupyterhub_password"]
        self.secrets["nublado"]["hub_db_password"] = db_password


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="generate_secrets")
    parser.add_argument("environment", help="Environment to generate")
    parser.add_argument("--regenerate", action="store_true")
    args = parser.parse_args()
    generator = SecretGenerator(args.environment, args.regenerate)
    generator.load()
    generator.generate()
    generator.save()
