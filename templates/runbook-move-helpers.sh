
# Helpers of a move to another server. The old server is reached inside the postgres
# pod (kubectl exec, as postgres); the new one from this machine with psql, pg_dump
# and pg_restore as TARGET_ADMIN_USER (default postgres), whose password libpq takes
# from PGPASSWORD or ~/.pgpass, never from an argument. The role's password goes from
# `vault` through a pipe into python3, which sends PostgreSQL only its SCRAM verifier.

# SQL on the old server's database DB (standard input), inside the pod, tuples only.
source_sql() { # CONTEXT DB
  kubectl --context "$1" -n postgres exec -i deployment/postgres -- \
    psql -X -q -At -v ON_ERROR_STOP=1 -U postgres -d "$2"
}

# SQL on the new server's database DB (standard input), as the admin, tuples only.
target_sql() { # HOST PORT DB [psql options]
  local host="$1" port="$2" db="$3"
  shift 3
  PGCONNECT_TIMEOUT=10 psql -X -q -At -v ON_ERROR_STOP=1 -h "$host" -p "$port" \
    -U "${TARGET_ADMIN_USER:-postgres}" -d "$db" "$@"
}

# Makes the folder for the dumps (mode 700); refuses one a git repository would track.
move_dir_ready() { # DIR
  mkdir -p "$1" || return 1
  chmod 700 "$1" || return 1
  if git -C "$1" rev-parse --is-inside-work-tree > /dev/null 2>&1 \
    && ! git -C "$1" check-ignore -q "$1" 2> /dev/null; then
    echo "$1 is inside a git checkout: dumps hold the data, keep them out of repositories (set PGDB_MOVE_DIR)." >&2
    return 1
  fi
}

# Stops unless the new server answers and the admin logs in.
check_target_reachable() { # HOST PORT
  if ! pg_isready -q -t 10 -h "$1" -p "$2"; then
    echo "The new server $1:$2 does not answer (pg_isready): check the address and the network." >&2
    return 1
  fi
  echo "SELECT 'The new server answers: ' || version();" | target_sql "$1" "$2" postgres
}

# The major version of a server_version_num (150018 -> 15).
major_of() { # VERSION_NUM
  echo $(($1 / 10000))
}

# Prints the versions; stops when the new server or this machine's pg_restore is
# older than the old server (a dump does not restore into an older major version).
compare_versions() { # CONTEXT HOST PORT
  local source target tool
  source="$(echo 'SHOW server_version_num;' | source_sql "$1" postgres)" || return 1
  target="$(echo 'SHOW server_version_num;' | target_sql "$2" "$3" postgres)" || return 1
  tool="$(pg_restore --version | sed -E 's/.* ([0-9]+)[.].*/\1/')" || return 1
  echo "Versions: old server $source, new server $target, pg_restore here $tool."
  if [ "$(major_of "$target")" -lt "$(major_of "$source")" ]; then
    echo "The new server ($target) is older than the old one ($source): the dump would not restore." >&2
    return 1
  fi
  if [ "$tool" -lt "$(major_of "$source")" ]; then
    echo "pg_restore here is version $tool, older than the old server: install a newer PostgreSQL client." >&2
    return 1
  fi
}

# Stops unless the database is absent from the new server or holds nothing: no
# relation, function or type outside the system schemas, no large object.
check_target_empty() { # HOST PORT DB
  local exists objects
  exists="$(printf '%s\n' "SELECT count(*) FROM pg_database WHERE datname = :'db';" \
    | target_sql "$1" "$2" postgres -v db="$3")" || return 1
  if [ "$exists" = 0 ]; then
    echo "The database $3 is absent from the new server: the copy creates it."
    return 0
  fi
  objects="$(target_sql "$1" "$2" "$3" <<'SQL'
SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_toast%')
     + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema'))
     + (SELECT count(*) FROM pg_largeobject_metadata);
SQL
)" || return 1
  if [ "$objects" != 0 ]; then
    echo "The database $3 on the new server is not empty ($objects objects): nothing is copied over data." >&2
    return 1
  fi
  echo "The database $3 exists on the new server and is empty."
}

# Prints the size of what moves.
show_move_size() { # CONTEXT DB
  printf '%s\n' "SELECT 'Size of ' || current_database() || ': ' || pg_size_pretty(pg_database_size(current_database()))
    || ', ' || (SELECT count(*) FROM pg_largeobject_metadata) || ' large objects';" | source_sql "$1" "$2"
}

# Waits (at most 2 minutes) until no session but ours uses the database on the old server.
wait_no_sessions() { # CONTEXT DB
  local tries=0 sessions
  while :; do
    sessions="$(printf '%s\n' "SELECT string_agg(usename || '@' || coalesce(nullif(client_addr::text, ''), 'local') || ' ' || application_name, ', ')
      FROM pg_stat_activity WHERE datname = :'db' AND pid <> pg_backend_pid();" \
      | kubectl --context "$1" -n postgres exec -i deployment/postgres -- psql -X -q -At -U postgres -d postgres -v db="$2")"
    if [ -z "$sessions" ]; then
      echo "No session uses $2."
      return 0
    fi
    tries=$((tries + 1))
    if [ "$tries" -ge 24 ]; then
      echo "Sessions still use $2 after 2 minutes: $sessions. Stop what connects (freeze) and run this again." >&2
      return 1
    fi
    sleep 5
  done
}

# Records each Deployment's replica count in FILE (once: a second freeze keeps the
# first record), scales them all to zero and waits (at most 10 minutes).
freeze_app() { # CONTEXT NAMESPACE FILE
  local tries=0 running
  if [ -s "$3" ]; then
    echo "$3 already records the replica counts of $2: kept."
  else
    kubectl --context "$1" -n "$2" get deployments \
      -o jsonpath='{range .items[*]}{.metadata.name}{" "}{.spec.replicas}{"\n"}{end}' > "$3.partial" || return 1
    mv "$3.partial" "$3" || return 1
    echo "Replica counts of $2 recorded in $3."
  fi
  kubectl --context "$1" -n "$2" scale deployment --all --replicas=0 || return 1
  until running="$(kubectl --context "$1" -n "$2" get deployments \
    -o jsonpath='{range .items[*]}{.status.replicas}{end}')" && [ -z "$(printf '%s' "$running" | tr -d '0 \n')" ]; do
    tries=$((tries + 1))
    if [ "$tries" -ge 120 ]; then
      echo "The pods of $2 did not stop within 10 minutes." >&2
      return 1
    fi
    sleep 5
  done
  echo "$2 is scaled to zero."
}

# Scales each Deployment of NAMESPACE back to the count FILE recorded, then waits
# (at most 10 minutes) until they are available.
restore_replicas() { # CONTEXT NAMESPACE FILE
  local name replicas
  if [ ! -s "$3" ]; then
    echo "No replica counts recorded for $2 in $3: freeze did not run; scale its Deployments by hand." >&2
    return 1
  fi
  while read -r name replicas; do
    [ -n "$name" ] || continue
    kubectl --context "$1" -n "$2" scale deployment "$name" --replicas="${replicas:-1}" || return 1
  done < "$3"
  kubectl --context "$1" -n "$2" wait --for=condition=Available deployment --all --timeout=10m
}

# Dumps the database inside the pod to FILE with its checksum in FILE.sha256; a
# new dump forgets an earlier verification.
dump_for_move() { # CONTEXT DB FILE
  rm -f "$3.verified"
  PGDB_DUMP_DIR="$(dirname -- "$3")" dump_database "$1" "$2" "$(basename -- "$3")" || return 1
  sha256sum "$3" > "$3.sha256" || return 1
  echo "Checksum: $(cut -d' ' -f1 "$3.sha256")."
}

# Stops unless FILE holds a dump that dump_for_move made.
move_dump_exists() { # FILE
  PGDB_DUMP_DIR="$(dirname -- "$1")" dump_exists "$(basename -- "$1")"
}

# Creates (or updates) the role on the new server with the password KEY of the Vault
# secret PATH: vault prints it into python3, which computes the SCRAM-SHA-256 verifier;
# only the verifier reaches PostgreSQL, on psql's standard input.
create_role_on_target() { # HOST PORT VAULT_PATH KEY USER
  local verifier exists
  # shellcheck disable=SC2016 # a Python program, not shell
  verifier="$(vault kv get -field="$4" "$3" | python3 -c '
import base64, hashlib, hmac, os, sys
password = sys.stdin.buffer.read()
if not password:
    sys.exit("the password read from Vault is empty")
salt = os.urandom(16)
salted = hashlib.pbkdf2_hmac("sha256", password, salt, 4096)
client = hmac.new(salted, b"Client Key", "sha256").digest()
server = hmac.new(salted, b"Server Key", "sha256").digest()
b64 = lambda b: base64.b64encode(b).decode()
print("SCRAM-SHA-256$4096:%s$%s:%s" % (b64(salt), b64(hashlib.sha256(client).digest()), b64(server)))
')" || return 1
  exists="$(printf '%s\n' "SELECT count(*) FROM pg_roles WHERE rolname = :'role';" \
    | target_sql "$1" "$2" postgres -v role="$5")" || return 1
  if [ "$exists" = 0 ]; then
    printf '%s\n' "\\set verifier '$verifier'" "CREATE ROLE :\"role\" LOGIN PASSWORD :'verifier';" \
      | target_sql "$1" "$2" postgres -v role="$5" || return 1
    echo "The role $5 is created on the new server with the password of $4."
  else
    printf '%s\n' "\\set verifier '$verifier'" "ALTER ROLE :\"role\" LOGIN PASSWORD :'verifier';" \
      | target_sql "$1" "$2" postgres -v role="$5" || return 1
    echo "The role $5 existed on the new server: it now has the password of $4."
  fi
}

# Creates the database owned by USER (or gives an existing empty one to USER).
create_database_on_target() { # HOST PORT DB USER
  local exists
  check_target_empty "$1" "$2" "$3" || return 1
  exists="$(printf '%s\n' "SELECT count(*) FROM pg_database WHERE datname = :'db';" \
    | target_sql "$1" "$2" postgres -v db="$3")" || return 1
  if [ "$exists" = 0 ]; then
    printf '%s\n' 'CREATE DATABASE :"db" OWNER :"role";' | target_sql "$1" "$2" postgres -v db="$3" -v role="$4" || return 1
  else
    printf '%s\n' 'ALTER DATABASE :"db" OWNER TO :"role";' | target_sql "$1" "$2" postgres -v db="$3" -v role="$4" || return 1
  fi
  echo "The database $3 on the new server is owned by $4."
}

# Restores FILE (after checking its checksum) as USER in one transaction that the
# first error ends: a failed restore leaves the database empty.
restore_on_target() { # HOST PORT DB USER FILE
  if ! sha256sum --quiet -c "$5.sha256"; then
    echo "$5 does not match its checksum: dump again (copy phase)." >&2
    return 1
  fi
  if ! PGCONNECT_TIMEOUT=10 pg_restore --no-owner --role="$4" --exit-on-error --single-transaction \
    -h "$1" -p "$2" -U "${TARGET_ADMIN_USER:-postgres}" -d "$3" "$5"; then
    echo "pg_restore failed: nothing was restored into $3 (one transaction). Fix the cause, then run copy again." >&2
    return 1
  fi
  echo "Restored $5 into $3 on the new server."
}

# What verify compares: each table's row count and a sum of its rows' hashes, each
# sequence's last value, and the large objects' count and contents.
MOVE_STATE_SQL="$(cat <<'SQL'
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
SET IntervalStyle = 'postgres';
SET extra_float_digits = 3;
SET bytea_output = 'hex';
SELECT format('SELECT %L, count(*), coalesce(sum((''x'' || left(md5(t::text), 15))::bit(60)::bigint), 0) FROM %I.%I AS t',
              'table ' || n.nspname || '.' || c.relname, n.nspname, c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_toast%'
ORDER BY n.nspname COLLATE "C", c.relname COLLATE "C" \gexec
SELECT 'sequence ' || schemaname || '.' || sequencename, coalesce(last_value::text, 'never used')
FROM pg_sequences ORDER BY schemaname COLLATE "C", sequencename COLLATE "C";
SELECT 'large objects', count(*), coalesce(sum(('x' || left(md5(lo_get(oid)), 15))::bit(60)::bigint), 0)
FROM pg_largeobject_metadata;
SQL
)"

# A schema dump without ownership, comments, blank lines or \restrict keys.
schema_only() {
  grep -v -e '^--' -e '^$' -e '^\\restrict' -e '^\\unrestrict' || true
}

# Runs the same query on both servers and compares the schemas; any difference
# stops. A match is recorded in FILE.verified with the dump's checksum.
verify_move() { # CONTEXT SOURCE_DB HOST PORT TARGET_DB FILE
  local state="$6.state"
  rm -f "$6.verified"
  printf '%s\n' "$MOVE_STATE_SQL" | source_sql "$1" "$2" > "$state.old" || return 1
  printf '%s\n' "$MOVE_STATE_SQL" | target_sql "$3" "$4" "$5" > "$state.new" || return 1
  kubectl --context "$1" -n postgres exec deployment/postgres -- \
    pg_dump -U postgres --schema-only --no-owner -d "$2" > "$state.old-raw" || return 1
  PGCONNECT_TIMEOUT=10 pg_dump --schema-only --no-owner -h "$3" -p "$4" \
    -U "${TARGET_ADMIN_USER:-postgres}" -d "$5" > "$state.new-raw" || return 1
  schema_only < "$state.old-raw" > "$state.old-schema"
  schema_only < "$state.new-raw" > "$state.new-schema"
  if [ ! -s "$state.old" ] || [ ! -s "$state.old-schema" ]; then
    echo "The old server's state came back empty: nothing to compare; check the connection." >&2
    return 1
  fi
  if ! diff -u "$state.old" "$state.new" >&2 || ! diff -u "$state.old-schema" "$state.new-schema" >&2; then
    echo "The new server differs from the old one (above): do not switch. Was everything frozen?" >&2
    echo "To copy again: drop $5 on the new server, move $6 away, then run copy." >&2
    return 1
  fi
  echo "Same rows, sequences, large objects and schema on both servers ($(grep -c '^table ' "$state.old") tables)."
  cut -d' ' -f1 "$6.sha256" > "$6.verified"
}

# Stops unless verify passed for the current dump.
move_verified() { # FILE
  if [ ! -s "$1.verified" ] || [ "$(cat "$1.verified")" != "$(cut -d' ' -f1 "$1.sha256" 2> /dev/null)" ]; then
    echo "verify has not passed for $1: run copy and verify first; nothing is switched." >&2
    return 1
  fi
}

# Stops unless the new server's database holds tables: nothing is dropped on the old
# server before the data is on the new one.
check_target_holds() { # HOST PORT DB
  local tables
  tables="$(echo "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema');" \
    | target_sql "$1" "$2" "$3")" || tables=""
  if [ -z "$tables" ] || [ "$tables" = 0 ]; then
    echo "The new server's $3 holds no table (or cannot be reached): nothing is dropped on the old server." >&2
    return 1
  fi
  echo "The new server's $3 holds $tables tables."
}
