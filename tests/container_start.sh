#!/bin/sh
# A stand-in for the start-up script of the cluster's postgres image, written for the
# tests from its documented behaviour (not the image's code): on every start it lists
# the environment in reverse sorted order (`env | sort -r`; the image's musl sorts by
# bytes, hence LC_ALL=C here), takes every VRO_DB_..._USER variable, reads <ID> as the
# third `_`-separated field of its name, skips an entry lacking VRO_DB_<ID>_USER,
# _DB or _PASSWORD with a notice, and runs unquoted SQL per entry through
# `psql -v ON_ERROR_STOP=0`, so a failing statement is skipped silently.
#
# The server is the one PGHOST/PGPORT name, as the superuser (PGUSER). Passwords
# travel in the environment and on psql's standard input only.
set -u

env | LC_ALL=C sort -r | sed -n 's/^\(VRO_DB_[^=]*_USER\)=.*/\1/p' | cut -d_ -f3 |
    while read -r id; do
        case $id in
        *[!A-Za-z0-9]* | '')
            echo "notice: skipping the id '$id'" >&2
            continue
            ;;
        esac
        eval "user=\${VRO_DB_${id}_USER:-}"
        eval "db=\${VRO_DB_${id}_DB:-}"
        eval "password=\${VRO_DB_${id}_PASSWORD:-}"
        if [ -z "$user" ] || [ -z "$db" ] || [ -z "$password" ]; then
            echo "notice: VRO_DB_${id}_* is incomplete; skipping it" >&2
            continue
        fi
        printf '%s\n' \
            "CREATE ROLE $user WITH NOLOGIN;" \
            "ALTER ROLE $user LOGIN ENCRYPTED PASSWORD '$password';" \
            "CREATE DATABASE $db;" \
            "ALTER DATABASE $db OWNER TO $user;"
    done | psql -X -q -v ON_ERROR_STOP=0 >/dev/null
