# Sourced by the benchmarks: the database Callopt runs on, by STORE (sqlite or postgres).
#   bench_database DIR CPU   prints the database URL: a SQLite file in DIR, or a database on a
#                            PostgreSQL server of its own (scripts/postgres, data under DIR/pg)
#                            whose processes share core CPU with Callopt, as SQLite's work
#                            does in-process (connections forked later inherit the core)
#   bench_database_stop DIR  stops that server, if any
#   bench_redis DIR CPU      starts a Redis of its own on a free loopback port, pinned to CPU
#                            (data, none kept, and log under DIR), and prints its URL; the
#                            caller stops it (its pid is in DIR/redis.pid)
STORE=${STORE:-sqlite}

bench_database() {
    local dir=$1 cpu=$2 url postmaster pid
    case "$STORE" in
        sqlite) echo "$dir/callopt.db" ;;
        postgres)
            chmod 755 "$dir" # the server runs as the postgres user, under DIR
            url=$(PG_DURABLE=1 "$REPO/scripts/postgres" start "$dir/pg") || return 1
            postmaster=$(head -n 1 "$dir/pg/data/postmaster.pid")
            for pid in "$postmaster" $(pgrep -P "$postmaster" || true); do
                taskset -p -c "$cpu" "$pid" >/dev/null
            done
            echo "$url/callopt_bench"
            ;;
        *) echo "STORE is sqlite or postgres, not $STORE" >&2; return 1 ;;
    esac
}

bench_database_stop() {
    if [ "$STORE" = postgres ]; then
        "$REPO/scripts/postgres" stop "$1/pg" 2>/dev/null || true
    fi
}

bench_redis() {
    local dir=$1 cpu=$2 port
    command -v redis-server >/dev/null || { echo "redis-server is needed" >&2; return 1; }
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
    taskset -c "$cpu" redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
        --dir "$dir" >"$dir/redis.log" 2>&1 &
    echo $! >"$dir/redis.pid"
    for _ in $(seq 1 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "redis://127.0.0.1:$port"
            return 0
        fi
        sleep 0.05
    done
    echo "redis-server did not listen on $port: $(cat "$dir/redis.log")" >&2
    return 1
}
