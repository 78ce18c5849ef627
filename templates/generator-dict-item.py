@@q@@@@secret_key@@@@q@@: secrets.token_hex(32)
