#!/usr/bin/env python3
import secrets


class SecretGenerator:
    def __init__(self):
        self.secrets = {}

    def _set_generated(self, component, name, value):
        self.secrets.setdefault(component, {}).setdefault(name, value)

    def _postgres(self):
        self._set_generated("postgres", "root_password", secrets.token_hex(64))
        self._set_generated(
            "postgres", "gafaelfawr_password", secrets.token_hex(32)
        )
