# Helpers used by the runbook's steps. They print no password and pass none as an
# argument: a new value goes from `openssl rand` to `vault` through a pipe, from a
# shell variable (`printf` is a builtin: no process sees it in its arguments). Each
# checks the status of every command it runs (pasted, there is no pipefail).

# Dumps go here, outside any repository (so `git add -A` never picks one up).
PGDB_DUMP_DIR="${PGDB_DUMP_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/pgdb/dumps}"

if [ -n "${VAULT_TOKEN:-}" ]; then
  VAULT_TOKEN_GIVEN=1
fi

# Exports the environment's Vault address and asks for its token (without echo)
# unless VAULT_TOKEN was set before these helpers were loaded.
vault_login() { # ENV VAULT_ADDR
  export VAULT_ADDR="$2"
  if [ -n "${VAULT_TOKEN_GIVEN:-}" ]; then
    echo "Vault $2 for $1: using VAULT_TOKEN from the environment." >&2
    return 0
  fi
  read -rsp "Vault token for $1 ($2): " VAULT_TOKEN
  echo >&2
  export VAULT_TOKEN
}

# Stops with a clear message unless the secret exists (vault kv patch cannot create it).
vault_secret_exists() { # PATH
  if ! vault kv get "$1" > /dev/null; then
    echo "There is no secret at $1 at $VAULT_ADDR, or this token cannot read it." >&2
    echo "Check VAULT_ADDR, the token and the path. A new environment's postgres secret is" >&2
    echo "created with all its keys by the environment's secret installation, not here." >&2
    return 1
  fi
}

# 0 when KEY is in the secret, 1 when it is absent, 2 when it cannot be told.
vault_has_key() { # PATH KEY
  local status=0
  vault kv get -field="$2" "$1" > /dev/null 2>&1 || status=$?
  case "$status" in
    0 | 1) return "$status" ;;
    *)
      echo "Cannot read $2 from $1 (vault exit status $status)." >&2
      return 2
      ;;
  esac
}

# Writes a new 64-hex-character value for KEY into the secret (the other keys stay).
new_password_into() { # PATH KEY
  local value
  if ! value="$(openssl rand -hex 32)" || [ "${#value}" -ne 64 ]; then
    echo "openssl rand failed: nothing was written to $1." >&2
    return 1
  fi
  if ! printf '%s' "$value" | vault kv patch "$1" "$2=-" > /dev/null; then
    echo "vault kv patch $1 failed: $2 was not written." >&2
    return 1
  fi
}

# A new 64-hex-character password for KEY, only when KEY is absent.
put_password_if_absent() { # PATH KEY
  local has=0
  vault_secret_exists "$1" || return 1
  vault_has_key "$1" "$2" || has=$?
  case "$has" in
    0)
      echo "$2 is already in $1: left alone."
      return 0
      ;;
    1) ;;
    *) return 1 ;;
  esac
  new_password_into "$1" "$2" || return 1
  echo "$2 added to $1."
}

# A new value for KEY, overwriting the old one (rotation).
rotate_password() { # PATH KEY
  local has=0
  vault_secret_exists "$1" || return 1
  vault_has_key "$1" "$2" || has=$?
  case "$has" in
    0) ;;
    1)
      echo "$2 is not in $1: there is nothing to rotate (add the database instead)." >&2
      return 1
      ;;
    *) return 1 ;;
  esac
  new_password_into "$1" "$2" || return 1
  echo "$2 in $1 has a new value."
}

# Deletes just KEY from the secret: KV version 2 cannot delete one key, so the
# secret is read as JSON, the key dropped by python3, and the rest written back
# from standard input. Older versions of the secret keep the old value.
delete_vault_key() { # PATH KEY
  local has=0
  vault_secret_exists "$1" || return 1
  vault_has_key "$1" "$2" || has=$?
  case "$has" in
    0) ;;
    1)
      echo "$2 is not in $1: nothing to delete."
      return 0
      ;;
    *) return 1 ;;
  esac
  local secret rest
  if ! secret="$(vault kv get -format=json "$1")"; then
    echo "Cannot read $1: nothing was deleted." >&2
    return 1
  fi
  if ! rest="$(printf '%s' "$secret" \
    | python3 -c 'import json, sys; data = json.load(sys.stdin)["data"]["data"]; del data[sys.argv[1]]; json.dump(data, sys.stdout)' "$2")"; then
    echo "Cannot drop $2 from the secret read from $1: nothing was deleted." >&2
    return 1
  fi
  if ! printf '%s' "$rest" | vault kv put "$1" - > /dev/null; then
    echo "vault kv put $1 failed: $2 was not deleted." >&2
    return 1
  fi
  echo "$2 deleted from $1."
}

# The clusters taken in this shell, one "ENV<tab>CONTEXT" line each, so that one
# context is never confirmed for two environments (pasting the helpers again keeps them).
CONFIRMED_CONTEXTS="${CONFIRMED_CONTEXTS:-}"

# Prints the environment CONTEXT was confirmed for in this shell, if any.
context_owner() { # CONTEXT
  local line tab=$'\t'
  while IFS= read -r line; do
    if [ -n "$line" ] && [ "${line#*"$tab"}" = "$1" ]; then
      printf '%s\n' "${line%%"$tab"*}"
      return 0
    fi
  done <<< "$CONFIRMED_CONTEXTS"
}

# Records CONTEXT as the cluster of ENV in this shell; refuses (1) a context already
# taken for another environment. Also run for a configured context of another
# environment before the current one is confirmed.
remember_context() { # ENV CONTEXT
  local owner line kept="" tab=$'\t'
  owner="$(context_owner "$2")"
  if [ -n "$owner" ] && [ "$owner" != "$1" ]; then
    echo "The kubectl context $2 is the cluster of $owner in this shell: it cannot also be the cluster of $1." >&2
    echo "Switch to the cluster of $1 (kubectl config use-context ...) and run this block again." >&2
    return 1
  fi
  while IFS= read -r line; do
    if [ -n "$line" ] && [ "${line%%"$tab"*}" != "$1" ]; then
      kept="$kept$line"$'\n'
    fi
  done <<< "$CONFIRMED_CONTEXTS"
  CONFIRMED_CONTEXTS="$kept$1$tab$2"
}

# Shows the current kubectl context and stores it in VARIABLE only when confirmed;
# a context already taken for another environment is refused before asking.
confirm_context() { # ENV VARIABLE
  local current answer owner
  unset "$2"
  current="$(kubectl config current-context)"
  owner="$(context_owner "$current")"
  if [ -n "$owner" ] && [ "$owner" != "$1" ]; then
    remember_context "$1" "$current"
    return 1
  fi
  read -rp "kubectl's current context is $current. Is it the cluster of $1? [y/N] " answer
  if [ "$answer" = y ] || [ "$answer" = yes ]; then
    remember_context "$1" "$current" || return 1
    printf -v "$2" '%s' "$current"
  else
    echo "Not confirmed: switch to the cluster of $1 (kubectl config use-context ...) and run this block again." >&2
    return 1
  fi
}

# Waits (at most 5 minutes) until the vault secrets operator has recreated the secret.
wait_for_secret() { # CONTEXT NAMESPACE SECRET
  local tries=0
  until kubectl --context "$1" -n "$2" get secret "$3" > /dev/null 2>&1; do
    tries=$((tries + 1))
    if [ "$tries" -ge 60 ]; then
      echo "The secret $3 in $2 was not recreated within 5 minutes: check the vault secrets operator." >&2
      return 1
    fi
    sleep 5
  done
}

# Waits (at most 30 minutes) until the chart repository's index lists the chart version.
wait_for_chart() { # REPOSITORY CHART VERSION
  local tries=0
  until helm show chart "$2" --repo "$1" --version "$3" > /dev/null 2>&1; do
    tries=$((tries + 1))
    if [ "$tries" -ge 60 ]; then
      echo "$2 $3 is not in $1 after 30 minutes: check the charts repository's release workflow." >&2
      return 1
    fi
    sleep 30
  done
  echo "$2 $3 is published."
}

# Dumps a database to a new file NAME in $PGDB_DUMP_DIR before anything drops it.
dump_database() { # CONTEXT DATABASE NAME
  local file="$PGDB_DUMP_DIR/$3"
  if ! mkdir -p "$PGDB_DUMP_DIR" || ! chmod 700 "$PGDB_DUMP_DIR"; then
    echo "Cannot create the dump folder $PGDB_DUMP_DIR." >&2
    return 1
  fi
  if [ -e "$file" ]; then
    echo "$file already exists: move it away first." >&2
    return 1
  fi
  # Written under another name first: a dump cut short never looks like a dump.
  if ! kubectl --context "$1" -n postgres exec deployment/postgres -- pg_dump -U postgres -Fc -d "$2" > "$file.partial"; then
    echo "pg_dump of $2 failed: $file.partial is incomplete; nothing is dropped without a dump." >&2
    return 1
  fi
  if [ ! -s "$file.partial" ]; then
    echo "The dump $file.partial is empty: stopping." >&2
    return 1
  fi
  if ! mv "$file.partial" "$file"; then
    echo "Cannot rename $file.partial to $file." >&2
    return 1
  fi
  echo "Dumped $2 to $file ($(wc -c < "$file") bytes)."
}

# Stops unless $PGDB_DUMP_DIR holds the dump NAME that dump_database made.
dump_exists() { # NAME
  if [ ! -s "$PGDB_DUMP_DIR/$1" ]; then
    echo "There is no dump $PGDB_DUMP_DIR/$1: run the dump block first (nothing is dropped without one)." >&2
    return 1
  fi
}

# Stops unless the secret in the cluster holds KEY.
check_secret_key() { # CONTEXT KEY
  local secret
  if ! secret="$(kubectl --context "$1" -n postgres get secret postgres -o json)"; then
    echo "Cannot read the postgres secret in $1." >&2
    return 1
  fi
  if printf '%s' "$secret" \
    | python3 -c 'import json, sys; sys.exit(0 if json.load(sys.stdin)["data"].get(sys.argv[1]) else 1)' "$2"; then
    echo "$2 is in the postgres secret."
  else
    echo "$2 is not in the postgres secret: is it in Vault at the path the secret reads?" >&2
    return 1
  fi
}

# Stops before a sync unless the secret in the cluster holds KEY: postgres restarted
# without a password it reads at start does not come up.
secret_ready_for_sync() { # CONTEXT KEY
  if ! check_secret_key "$1" "$2"; then
    echo "Not syncing: postgres would restart without $2 and not start. Put it into Vault, run the refresh block again, then this one." >&2
    return 1
  fi
}

# Stops unless the server has the database.
check_database() { # CONTEXT DATABASE
  local found
  if ! found="$(printf '%s\n' "SELECT datname FROM pg_database WHERE datname = :'name';" \
    | kubectl --context "$1" -n postgres exec -i deployment/postgres -- psql -U postgres -tA -v name="$2")"; then
    echo "Cannot ask the server in $1 about $2 (kubectl exec or psql failed)." >&2
    return 1
  fi
  if [ "$found" = "$2" ]; then
    echo "The database $2 exists."
  else
    echo "The database $2 does not exist: see the postgres pod's log (kubectl logs deployment/postgres -n postgres)." >&2
    return 1
  fi
}

# Stops unless the role logs in to its database, inside the pod, with the pod's own
# copy of the password (the VRO_DB_<ID>_* variables of the container).
check_login() { # CONTEXT ID
  # shellcheck disable=SC2016 # expanded by the shell in the pod
  kubectl --context "$1" -n postgres exec deployment/postgres -- env ID="$2" sh -c \
    'export PGPASSWORD="$(printenv "VRO_DB_${ID}_PASSWORD")"; psql -h 127.0.0.1 -U "$(printenv "VRO_DB_${ID}_USER")" -d "$(printenv "VRO_DB_${ID}_DB")" -tAc "SELECT current_user"'
}

# Where the postgres Deployment does not use the Recreate strategy, an old pod that
# hangs in Terminating holds the rollout. Finds the postgres pods stuck in Terminating,
# names the ReplicaSet that owns each, deletes it only once confirmed, then waits (at
# most 10 minutes) for the rollout. One pass; nothing stuck, nothing done.
unstick_rollout() { # CONTEXT
  local list pod owner deleted=0
  local -a pods=() owners=()
  if ! list="$(kubectl --context "$1" -n postgres get pods \
    -o jsonpath='{range .items[?(@.metadata.deletionTimestamp)]}{.metadata.name}{"\n"}{end}')"; then
    echo "Cannot list the postgres pods: nothing was deleted." >&2
    return 1
  fi
  # Read into arrays: `confirm` below reads the operator's answer from stdin.
  [ -z "$list" ] || mapfile -t pods <<< "$list"
  for pod in "${pods[@]}"; do
    [ -n "$pod" ] || continue
    if ! owner="$(kubectl --context "$1" -n postgres get pod "$pod" \
      -o jsonpath='{.metadata.ownerReferences[?(@.kind=="ReplicaSet")].name}')"; then
      echo "Cannot read the owner of the pod $pod: nothing was deleted." >&2
      return 1
    fi
    if [ -z "$owner" ]; then
      echo "The pod $pod hangs in Terminating but no ReplicaSet owns it: look at it by hand." >&2
      return 1
    fi
    echo "The pod $pod hangs in Terminating; the ReplicaSet $owner owns it."
    case " ${owners[*]} " in
      *" $owner "*) ;;
      *) owners+=("$owner") ;;
    esac
  done
  if [ "${#owners[@]}" = 0 ]; then
    echo "No postgres pod hangs in Terminating: nothing to do."
    return 0
  fi
  for owner in "${owners[@]}"; do
    if ! confirm "Delete the ReplicaSet $owner in postgres?"; then
      echo "The ReplicaSet $owner was kept." >&2
      continue
    fi
    if ! kubectl --context "$1" -n postgres delete replicaset "$owner"; then
      echo "kubectl delete replicaset $owner failed." >&2
      return 1
    fi
    deleted=1
  done
  if [ "$deleted" = 0 ]; then
    return 1
  fi
  kubectl --context "$1" -n postgres rollout status deployment/postgres --timeout=10m
}
