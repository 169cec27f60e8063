#!/usr/bin/env bash
# Times the report API on a large embedded store: 1,000,000 calls and 3,000,000 visitor sessions
# (bench/reports/data.sql), the overview (calls per local day with totals) and a breakdown (by
# traffic source, and by landing page) over the last 30 days, cold (a fresh process after the
# OS page cache is dropped) and warm (median of repeated requests). Goal: under 200 ms each.
# See bench/README.md.
#
# Environment overrides (defaults in brackets):
#   REPEAT [7]      warm requests per report (the median is printed)
#   SERVER_CPU [0]  the core the service runs on
#   TIME_ZONE [America/New_York]  the reports' time zone
#   KEEP_TMP [0]    1: keep the temp dir (database, logs) after the run
#   DB []           reuse a database made by an earlier run (KEEP_TMP=1) instead of generating one
set -euo pipefail

REPEAT=${REPEAT:-7}
SERVER_CPU=${SERVER_CPU:-0}
TIME_ZONE=${TIME_ZONE:-America/New_York}
KEEP_TMP=${KEEP_TMP:-0}

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN="$REPO/target/release/callopt"

log() { printf '[reports-bench] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

need_apt=()
command -v sqlite3 >/dev/null || need_apt+=(sqlite3)
command -v curl >/dev/null || need_apt+=(curl)
command -v taskset >/dev/null || need_apt+=(util-linux)
if [ ${#need_apt[@]} -gt 0 ]; then
    log "installing ${need_apt[*]}"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >&2
fi

log "building callopt (release)"
cargo build --release -q -p callopt --manifest-path "$REPO/Cargo.toml"

TMP=$(mktemp -d /tmp/callopt-reports-bench.XXXXXX)
SERVER=""
cleanup() {
    [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null || true
    if [ "$KEEP_TMP" = 1 ]; then log "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

if [ -n "${DB:-}" ]; then
    cp "$DB" "$TMP/bench.db"
    KEY=$(cat "$DB.key")
else
    "$BIN" migrate --db "$TMP/bench.db" >/dev/null
    KEY=$("$BIN" account create --name bench --db "$TMP/bench.db" | sed -n 's/^api_key: *//p')
    [ -n "$KEY" ] || die "no API key"
    log "generating 1,000,000 calls and 3,000,000 visitor sessions"
    start=$(date +%s)
    sqlite3 "$TMP/bench.db" < "$REPO/bench/reports/data.sql" >/dev/null
    log "generated in $(( $(date +%s) - start )) s"
    echo "$KEY" > "$TMP/bench.db.key"
fi
counts=$(sqlite3 "$TMP/bench.db" "SELECT (SELECT COUNT(*) FROM calls) || ' calls, ' || (SELECT COUNT(*) FROM visitor_sessions) || ' sessions';")
log "store: $counts, $(du -h "$TMP/bench.db" | cut -f1)"

start_server() {
    taskset -c "$SERVER_CPU" "$BIN" serve --listen 127.0.0.1:0 --db "$TMP/bench.db" \
        >"$TMP/out.log" 2>"$TMP/err.log" &
    SERVER=$!
    for _ in $(seq 1 300); do
        BASE=$(sed -n 's/^listening on //p' "$TMP/out.log" | head -1)
        [ -n "$BASE" ] && break
        kill -0 "$SERVER" 2>/dev/null || die "callopt exited: $(cat "$TMP/err.log")"
        sleep 0.1
    done
    [ -n "$BASE" ] || die "callopt did not start"
    case "$BASE" in http*) ;; *) BASE="http://$BASE" ;; esac
}
stop_server() { kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=""; }
drop_caches() {
    sync
    if ! echo 3 > /proc/sys/vm/drop_caches 2>/dev/null; then
        log "cannot drop the page cache (not root?): cold figures are process-cold only"
    fi
}

FROM=$(date -u -d '30 days ago' +%F)
TO=$(date -u -d 'tomorrow' +%F)
RANGE="from=$FROM&to=$TO&time_zone=$TIME_ZONE"
declare -A QUERIES=(
    [overview]="group_by=day&$RANGE"
    [by_source]="group_by=source&$RANGE"
    [by_landing_page]="group_by=landing_page&$RANGE"
)
ORDER=(overview by_source by_landing_page)

# One request: its total time in ms; fails on a non-200 answer.
timed() {
    local out code ms
    out=$(curl -s -o "$TMP/answer.json" -w '%{http_code} %{time_total}' \
        -H "authorization: Bearer $KEY" "$BASE/v1/reports/calls?$1")
    code=${out% *}
    [ "$code" = 200 ] || die "GET $1 answered $code: $(head -c 300 "$TMP/answer.json")"
    ms=$(awk -v t="${out#* }" 'BEGIN { printf "%.1f", t * 1000 }')
    echo "$ms"
}
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

# The service rolls settled days into the report rollups as it runs: let it catch up once (the
# rollups stay in the database), as a service that has been running would have.
log "rolling up settled days"
start=$(date +%s)
start_server
pending=""
for _ in $(seq 1 1200); do
    pending=$(curl -s "$BASE/metrics" | sed -n 's/^callopt_report_pending_days{node="[^"]*"} \([0-9.e+]*\)$/\1/p')
    [ "$pending" = 0 ] && break
    sleep 0.5
done
[ "$pending" = 0 ] || die "rollups not done after 600 s (pending days: ${pending:-none yet})"
stop_server
log "rolled up in $(( $(date +%s) - start )) s: $(sqlite3 "$TMP/bench.db" 'SELECT COUNT(*) FROM call_rollups') rollup rows"
declare -A COLD WARM
for name in "${ORDER[@]}"; do
    drop_caches
    start_server
    COLD[$name]=$(timed "${QUERIES[$name]}")
    calls=$(sed -n 's/.*"totals":{[^}]*"calls":\([0-9]*\).*/\1/p' "$TMP/answer.json")
    WARM[$name]=$(for _ in $(seq 1 "$REPEAT"); do timed "${QUERIES[$name]}"; done | median)
    log "$name: $calls calls in range, cold ${COLD[$name]} ms, warm ${WARM[$name]} ms"
    stop_server
done

for name in "${ORDER[@]}"; do
    printf '%s_cold_ms=%s %s_warm_ms=%s ' "$name" "${COLD[$name]}" "$name" "${WARM[$name]}"
done
echo "goal_ms=200"
