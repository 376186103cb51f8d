# Shell functions shared by the scripts: logging, installing packages, a scratch directory
# cleaned up on exit, a throwaway PostgreSQL cluster, and the server process.
# Source it after setting LOG_TAG; call setup_workdir before using WORK.

log() { printf '[%s] %s\n' "${LOG_TAG:-lhs}" "$*" >&2; }
die() { printf '[%s] error: %s\n' "${LOG_TAG:-lhs}" "$*" >&2; exit 1; }

as_root() {
    if [[ $(id -u) -eq 0 ]]; then "$@"
    elif command -v sudo >/dev/null; then sudo "$@"
    else die "need root (or sudo) to run: $*"
    fi
}

apt_install() {
    command -v apt-get >/dev/null || die "apt-get not found; install $* by hand"
    log "installing $* with apt-get"
    if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >&2; then
        as_root apt-get update -q >&2
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >&2
    fi
}

SERVER_PID=""
# Other processes started in the background, stopped (by their id) on exit.
BACKGROUND_PIDS=()
PG_DATA=""
PG_BIN=""

# A scratch directory, removed (with the server and the cluster stopped) when the script exits.
setup_workdir() {
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/lhs-${LOG_TAG:-lhs}.XXXXXX")
    chmod 755 "$WORK" # the postgres user must reach its cluster below it
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# Runs a PostgreSQL server program: as the postgres user when we are root (the server refuses
# to run as root), from a directory that user can read.
run_as_pg() {
    if [[ $(id -u) -eq 0 ]]; then (cd "$WORK" && runuser -u postgres -- "$@")
    else (cd "$WORK" && "$@")
    fi
}

stop_server() {
    if [[ -n $SERVER_PID ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi
}

stop_postgres() {
    if [[ -n $PG_DATA && -f $PG_DATA/postmaster.pid ]]; then
        run_as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
    fi
    # Throwaway: a later start_postgres in the same run makes a fresh cluster in the same place.
    [[ -n $PG_DATA ]] && rm -rf "$(dirname "$PG_DATA")"
    PG_DATA=""
}

stop_background() {
    local pid
    for pid in "${BACKGROUND_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    BACKGROUND_PIDS=()
}

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    stop_server
    stop_background
    stop_postgres
    rm -rf "$WORK"
    exit "$status"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

start_postgres() {
    if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
        apt_install postgresql
    fi
    PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    [[ -x $PG_BIN/initdb && -x $PG_BIN/pg_ctl ]] || die "no initdb/pg_ctl in $PG_BIN"
    if [[ $(id -u) -eq 0 ]]; then
        id postgres >/dev/null 2>&1 || die "running as root but there is no postgres user to run the cluster"
    fi
    local dir=$WORK/pg port
    mkdir -p "$dir/sock"
    [[ $(id -u) -eq 0 ]] && chown -R postgres: "$dir"
    port=$(free_port)
    log "postgres: initdb in $dir (server binaries $PG_BIN)"
    run_as_pg "$PG_BIN/initdb" -D "$dir/data" -U lhs --auth=trust -E UTF8 --locale=C -N \
        >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    PG_DATA=$dir/data
    run_as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir/sock -c fsync=off" start >/dev/null \
        || { cat "$dir/server.log" >&2; die "pg_ctl start failed"; }
    PG_PORT=$port
    PG_VERSION=$("$PG_BIN/pg_ctl" --version | awk '{print "PostgreSQL " $3}')
    DB_URL=$(pg_database lhs_rounds)
}

# Creates a database in the throwaway cluster and prints its URL.
pg_database() {
    "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U lhs "$1"
    printf 'postgres://lhs@127.0.0.1:%s/%s\n' "$PG_PORT" "$1"
}

# build_debug_binary: builds the debug binary and sets BIN to its path. With the test targets, so
# that it is the binary `cargo test` built (the tests' dependencies turn on more features of tokio
# and reqwest): after scripts/test nothing is compiled again.
build_debug_binary() {
    local target_dir=${CARGO_TARGET_DIR:-$ROOT/target}
    [[ $target_dir == /* ]] || target_dir=$ROOT/$target_dir
    log "cargo build --all-targets (target dir $target_dir)"
    (cd "$ROOT" && cargo build --locked --all-targets -q)
    BIN=$target_dir/debug/lhs-rounds
    [[ -x $BIN ]] || die "no binary at $BIN"
}

# start_server LOGFILE ARGS...: runs `$BIN serve ARGS...` on a free port and waits until
# /healthz answers. Sets SERVER_PID and SERVER_URL.
start_server() {
    local logfile=$1 port
    shift
    port=$(free_port)
    SERVER_URL="http://127.0.0.1:$port"
    "$BIN" serve --bind "127.0.0.1:$port" "$@" >"$logfile" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 600); do
        curl -fsS -o /dev/null --max-time 1 "$SERVER_URL/healthz" 2>/dev/null && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$logfile" >&2; die "the server exited before answering /healthz"; }
        sleep 0.1
    done
    die "the server did not answer /healthz within 60 s"
}

