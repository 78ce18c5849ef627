#!/usr/bin/env python3
import secrets
from collections import defaultdict


class SecretGenerator:
    def __init__(self, regenerate):
        self.secrets = defaultdict(dict)
        self.regenerate = regenerate

    def _set(self, component, name, new_value):
        self.secrets[component][name] = new_value

    def _set_generated(self, component, name, new_value):
        if name not in self.secrets[component] or self.regenerate:
            self._set(component, name, new_value)

    def _postgres(self):
        self._set_generated('postgres', 'root_password', secrets.token_hex(64))
        self._set_generated('postgres', 'jupyterhub_password', secrets.token_hex(32))

    def _vo_cutouts(self):
        db_pass = self.secrets['postgres']['vo-cutouts_password']
        self._set('vo-cutouts', 'database-password', db_pass)
