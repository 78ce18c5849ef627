self._set_generated(
    @@q@@postgres@@q@@, @@q@@@@secret_key@@@@q@@, secrets.token_hex(32)
)
