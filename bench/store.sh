# Sourced by the benchmarks: the database Callopt runs on, by STORE (sqlite or postgres).
#   bench_database DIR CPU   prints the database URL: a SQLite file in DIR, or a database on a
#                            PostgreSQL server of its own (scripts/postgres, data under DIR/pg)
#                            whose processes share core CPU with Callopt, as SQLite's work
#                            does in-process (connections forked later inherit the core)
#   bench_database_stop DIR  stops that server, if any
STORE=${STORE:-sqlite}

bench_database() {
    local dir=$1 cpu=$2 url postmaster pid
    case "$STORE" in
        sqlite) echo "$dir/callopt.db" ;;
        postgres)
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
