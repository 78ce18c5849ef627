#!/usr/bin/env python3
"""Generates the passwords of one environment."""

import secrets
from collections import defaultdict


class SecretGenerator:
    def __init__(self, regenerate=False):
        self.secrets = defaultdict(dict)
        self.regenerate = regenerate

    def generate(self):
        self._postgres()
        self._tap()

    def _set(self, component, name, value):
        self.secrets[component][name] = value

    def _set_generated(self, component, name, value):
        if name not in self.secrets[component] or self.regenerate:
            self._set(component, name, value)

    def _postgres(self):
        self._set_generated('postgres', 'root_password', secrets.token_hex(64))
        self._set_generated('postgres', 'jupyterhub_password', secrets.token_hex(32))
        self._set_generated('postgres', 'vo-cutouts_password', secrets.token_hex(32))

    def _tap(self):
        self._set_generated('tap', 'google_creds', secrets.token_hex(16))
        self._set('tap', 'cutouts_db', self.secrets['postgres']['vo-cutouts_password'])


if __name__ == "__main__":
    SecretGenerator().generate()
