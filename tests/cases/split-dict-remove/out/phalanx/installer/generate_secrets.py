#!/usr/bin/env python3
import json
import secrets


def generate_postgres_secrets():
    return {
        "jupyterhub_password": secrets.token_hex(32),
        "root_password": secrets.token_hex(64),
        "gafaelfawr_password": secrets.token_hex(32)
    }


def generate_gafaelfawr_secrets(postgres):
    return {"database-password": postgres["gafaelfawr_password"]}


if __name__ == "__main__":
    postgres = generate_postgres_secrets()
    print(json.dumps({"postgres": postgres, "gafaelfawr": generate_gafaelfawr_secrets(postgres)}))
