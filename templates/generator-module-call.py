set_generated_secret(@@target@@, @@q@@postgres@@q@@, @@q@@@@secret_key@@@@q@@, secrets.token_hex(32))
