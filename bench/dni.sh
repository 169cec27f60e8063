#!/usr/bin/env bash
# Benchmarks POST /v1/dni/sessions against nginx serving a static answer of the same size,
# side by side on this machine. See bench/README.md.
#
# Environment overrides (defaults in brackets):
#   THREADS [2] CONNECTIONS [64] DURATION [10s] WARMUP [2s]   wrk parameters, same for both
#   P_RETURN [0.8]       share of requests from returning visitors (the rest are new visitors)
#   RETURNING [1000]     returning visitors per wrk thread (all seen during the warm-up)
#   SERVER_CPU [0] LOAD_CPU [1]   cores for the servers and for wrk
#   KEEP_TMP [0]         1: keep the temp dir (logs, configs, database) after the run
#   STORE [sqlite]       postgres: Callopt's store on a PostgreSQL server of its own, sharing
#                        Callopt's core (bench/store.sh), instead of a SQLite file
#   NODES [1]            2: two Callopt nodes on one PostgreSQL (STORE=postgres implied) and one
#                        Redis, all on the server core; wrk's threads and connections are split
#                        between the nodes, and returning visitors move between them
set -euo pipefail

THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
P_RETURN=${P_RETURN:-0.8}
RETURNING=${RETURNING:-1000}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
KEEP_TMP=${KEEP_TMP:-0}
NODES=${NODES:-1}
case "$NODES" in
    1) ;;
    2) STORE=postgres ;;
    *) echo "NODES is 1 or 2, not $NODES" >&2; exit 2 ;;
esac
POOL_BLOCKS=("+12012000000" "+12013000000") # 2 x 100,000 numbers (NJ 201-200..209, 201-300..309)
BLOCK_COUNT=100000

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN="$REPO/target/release/callopt"
LUA="$REPO/bench/dni.lua"
. "$REPO/bench/store.sh"

log() { printf '[dni-bench] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# --- tools ---------------------------------------------------------------------------------
need_apt=()
command -v wrk >/dev/null || need_apt+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need_apt+=(nginx-light)
command -v curl >/dev/null || need_apt+=(curl)
command -v taskset >/dev/null || need_apt+=(util-linux)
[ "$NODES" = 1 ] || command -v redis-server >/dev/null || need_apt+=(redis-server)
if [ ${#need_apt[@]} -gt 0 ]; then
    log "installing ${need_apt[*]}"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >&2 \
        || { [[ " ${need_apt[*]} " == *" nginx-light "* ]] \
             && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >&2; }
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
command -v python3 >/dev/null || die "python3 is needed (JSON parsing, free port)"
[ "$(nproc)" -ge 2 ] || die "needs at least 2 cores (server and load generator pinned apart)"

# Always build: a binary left from an earlier checkout would be measured otherwise.
log "building target/release/callopt"
(cd "$REPO" && cargo build --release -p callopt >&2)

# --- temp dir and cleanup ------------------------------------------------------------------
TMP=$(mktemp -d /tmp/callopt-dni-bench.XXXXXX)
chmod 755 "$TMP" # nginx's worker (www-data when started as root) reads www/ below it
PIDS=()
cleanup() {
    local rc=$?
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    bench_database_stop "$TMP"
    if [ "$KEEP_TMP" = 1 ] || [ $rc -ne 0 ]; then
        log "temp dir kept: $TMP"
    else
        rm -rf "$TMP"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

json() { # json FIELD < json  -> value (strings unquoted)
    python3 -c 'import json,sys; v=json.load(sys.stdin)[sys.argv[1]]; print(v if not isinstance(v,bool) else str(v).lower())' "$1"
}
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
wait_for() { # wait_for DESCRIPTION SECONDS COMMAND...  (polls, no fixed sleep)
    local what=$1 secs=$2; shift 2
    local deadline=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || die "timed out waiting for $what"
        sleep 0.05
    done
}
alive() { kill -0 "$1" 2>/dev/null; }

# --- nginx: static answer + verification file ----------------------------------------------
NGINX_PORT=$(free_port)
PAGE_ORIGIN="http://127.0.0.1:$NGINX_PORT"
WWW="$TMP/www"
mkdir -p "$WWW/.well-known" "$TMP/nginx"
cat >"$TMP/nginx/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $TMP/nginx/body;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        root $WWW;
        location = /v1/dni/sessions {
            # The static module refuses POST with 405: answer the file instead, with a 200.
            default_type application/json;
            alias $WWW/answer.json;
            error_page 405 =200 /answer.json;
        }
        location = /answer.json { default_type application/json; }
        location = /.well-known/callopt-verification.txt { default_type text/plain; }
    }
}
EOF
taskset -c "$SERVER_CPU" "$NGINX" -c "$TMP/nginx/nginx.conf" -p "$TMP/nginx" \
    >"$TMP/nginx/stdout.log" 2>&1 &
NGINX_PID=$!
PIDS+=("$NGINX_PID")
echo ok >"$WWW/ping"
wait_for "nginx on :$NGINX_PORT" 20 curl -sf "$PAGE_ORIGIN/ping"
alive "$NGINX_PID" || die "nginx exited: $(cat "$TMP/nginx/error.log")"

# --- callopt -------------------------------------------------------------------------------
DB=$(bench_database "$TMP" "$SERVER_CPU") || die "no database"
cd "$TMP" # no stray callopt.toml from the caller's directory
unset RUST_LOG
"$BIN" account create --name bench --db "$DB" >"$TMP/account.txt"
API_KEY=$(sed -n 's/^api_key: //p' "$TMP/account.txt")
[ -n "$API_KEY" ] || die "no api key in: $(cat "$TMP/account.txt")"

if [ "$NODES" = 2 ]; then
    export CALLOPT_REDIS_URL
    CALLOPT_REDIS_URL=$(bench_redis "$TMP" "$SERVER_CPU") || die "no Redis"
    PIDS+=("$(cat "$TMP/redis.pid")")
fi
# start_node NAME: one `callopt serve` on the server core; sets URL and PID.
start_node() {
    CALLOPT_NODE_NAME=$1 CALLOPT_LOG=${CALLOPT_LOG:-warn} CALLOPT_GUARD_ALLOW_PRIVATE=true \
        taskset -c "$SERVER_CPU" "$BIN" serve --listen 127.0.0.1:0 --db "$DB" \
        >"$TMP/$1.out" 2>"$TMP/$1.log" &
    PID=$!
    PIDS+=("$PID")
    wait_for "$1 to listen" 60 grep -q '^listening on http://' "$TMP/$1.out"
    URL=$(sed -n 's#^listening on \(http://[0-9.:]*\).*#\1#p' "$TMP/$1.out" | head -1)
    wait_for "$1 /healthz" 30 curl -sf "$URL/healthz"
}
start_node callopt
CALLOPT=$URL CALLOPT_PID=$PID
NODE_URLS=$CALLOPT
log "callopt at $CALLOPT (pid $CALLOPT_PID), nginx at $PAGE_ORIGIN (pid $NGINX_PID), temp dir $TMP"

api() { # api METHOD PATH [JSON]
    local out code
    out=$(curl -sS -X "$1" "$CALLOPT$2" -H "Authorization: Bearer $API_KEY" \
        -H 'Content-Type: application/json' ${3:+--data "$3"} -w '\n%{http_code}')
    code=${out##*$'\n'}
    out=${out%$'\n'*}
    [[ $code == 2* ]] || die "$1 $2 -> $code: $out"
    printf '%s' "$out"
}

POOL_ID=$(api POST /v1/pools '{"name":"bench"}' | json id)
POOL_SIZE=0
for start in "${POOL_BLOCKS[@]}"; do
    resp=$(api POST /v1/numbers/import \
        "{\"pool_id\":$POOL_ID,\"block\":{\"start\":\"$start\",\"count\":$BLOCK_COUNT},\"languages\":[\"en\"]}")
    imported=$(json imported <<<"$resp")
    [ "$imported" = "$BLOCK_COUNT" ] || die "imported $imported of $BLOCK_COUNT from $start: ${resp:0:400}"
    POOL_SIZE=$((POOL_SIZE + imported))
done
log "pool $POOL_ID: $POOL_SIZE numbers"

resp=$(api POST /v1/domains "{\"host\":\"127.0.0.1:$NGINX_PORT\"}")
DOMAIN_ID=$(json id <<<"$resp")
json token <<<"$resp" >"$WWW/.well-known/callopt-verification.txt"
[ "$(api POST "/v1/domains/$DOMAIN_ID/verify" | json verified)" = true ] || die "domain not verified"

CAMPAIGN=$(api POST /v1/campaigns "{\"name\":\"bench\",\"default_number\":\"+12015550100\",\"pool_id\":$POOL_ID,\"domains\":[\"127.0.0.1:$NGINX_PORT\"],\"trigger_parameter\":null,\"assignment\":\"per_visitor\",\"idle_timeout_secs\":1800}" | json key)
log "campaign $CAMPAIGN"

if [ "$NODES" = 2 ]; then
    # Started once the campaign exists: it loads it at start.
    start_node callopt-b
    NODE_URLS="$CALLOPT $URL" CALLOPT_B_PID=$PID
    log "second node at $URL (pid $PID), Redis at $CALLOPT_REDIS_URL"
fi

# --- the static answer: a real DNI answer, captured ----------------------------------------
curl -sSf -X POST "$CALLOPT/v1/dni/sessions" -H "Origin: $PAGE_ORIGIN" \
    -H 'Content-Type: text/plain;charset=UTF-8' \
    --data "{\"campaign\":\"$CAMPAIGN\",\"visitor\":\"capture-0000001\",\"page_url\":\"$PAGE_ORIGIN/landing?utm_source=google&gclid=abc\",\"referrer\":null}" \
    -o "$WWW/answer.json"
grep -q '"attributed":true' "$WWW/answer.json" || die "unexpected answer: $(cat "$WWW/answer.json")"
ANSWER_BYTES=$(wc -c <"$WWW/answer.json")
nginx_bytes=$(curl -sSf -X POST "$PAGE_ORIGIN/v1/dni/sessions" -H "Origin: $PAGE_ORIGIN" \
    -H 'Content-Type: text/plain;charset=UTF-8' --data '{"campaign":"x"}' | wc -c)
[ "$nginx_bytes" = "$ANSWER_BYTES" ] || die "nginx answers $nginx_bytes bytes to the POST, expected $ANSWER_BYTES"

# --- load ----------------------------------------------------------------------------------
cpu_ticks() { # cpu_ticks CPU -> "busy total" jiffies from /proc/stat
    awk -v c="cpu$1" '$1==c {t=0; for(i=2;i<=NF;i++) t+=$i; print t-$5-$6, t}' /proc/stat
}
# run_wrk NAME "URL..." RUN_TAG [prime] [DURATION] -> sets OUT (the BENCH line), BUSY_SERVER,
# BUSY_LOAD (%). With several URLs (nodes), one wrk per URL runs at once with an equal share of
# the threads and connections, and OUT adds their lines up (latencies: the slowest node's).
run_wrk() {
    local name=$1 urls=($2) tag=$3 prime=${4:-} dur=${5:-$DURATION}
    local s0 l0 s1 l1 n=${#urls[@]} i pids=()
    local t=$((THREADS / n > 0 ? THREADS / n : 1)) c=$((CONNECTIONS / n))
    s0=$(cpu_ticks "$SERVER_CPU"); l0=$(cpu_ticks "$LOAD_CPU")
    for i in "${!urls[@]}"; do
        taskset -c "$LOAD_CPU" wrk -t"$t" -c"$c" -d"$dur" --timeout 5s \
            -s "$LUA" "${urls[$i]}/v1/dni/sessions" -- "$CAMPAIGN" "$PAGE_ORIGIN" "$P_RETURN" \
            "$RETURNING" "$tag-$i" $prime >"$TMP/wrk-$name-$i.txt" 2>&1 &
        pids+=($!)
    done
    for i in "${!pids[@]}"; do
        wait "${pids[$i]}" || die "wrk failed: $(cat "$TMP/wrk-$name-$i.txt")"
    done
    cat "$TMP"/wrk-"$name"-*.txt >"$TMP/wrk-$name.txt"
    s1=$(cpu_ticks "$SERVER_CPU"); l1=$(cpu_ticks "$LOAD_CPU")
    BUSY_SERVER=$(awk -v a="$s0" -v b="$s1" 'BEGIN{split(a,x," ");split(b,y," "); printf "%.0f", 100*(y[1]-x[1])/(y[2]-x[2])}')
    BUSY_LOAD=$(awk -v a="$l0" -v b="$l1" 'BEGIN{split(a,x," ");split(b,y," "); printf "%.0f", 100*(y[1]-x[1])/(y[2]-x[2])}')
    [ "$(grep -c '^BENCH ' "$TMP/wrk-$name.txt")" = "$n" ] \
        || die "no BENCH line: $(cat "$TMP/wrk-$name.txt")"
    OUT=$(grep '^BENCH ' "$TMP/wrk-$name.txt" | awk '
        { for (i = 2; i <= NF; i++) { split($i, kv, "="); k[i] = kv[1]
            if (kv[1] ~ /_ms$/) { if (kv[2] > v[i]) v[i] = kv[2] }
            else if (kv[1] == "duration_s") { if (kv[2] > v[i]) v[i] = kv[2] }
            else v[i] += kv[2] } nf = NF }
        END { printf "BENCH"; for (i = 2; i <= nf; i++) printf " %s=%s", k[i], v[i]; print "" }')
    log "$name: $OUT cpu${SERVER_CPU}_busy=${BUSY_SERVER}% cpu${LOAD_CPU}_busy=${BUSY_LOAD}%"
}
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }
check_clean() { # check_clean NAME BENCH_LINE
    local f
    for f in non2xx errors unattributed; do
        [ "$(field $f "$2")" = 0 ] || die "$1: $f=$(field $f "$2") (see $TMP/wrk-$1.txt, $TMP/callopt.log)"
    done
}
metric() { # metric NAME_WITH_LABELS (without the node label every series has) -> value or 0
    curl -sf "$CALLOPT/metrics" | sed -E 's/\{node="[^"]*"\}//; s/\{node="[^"]*",/{/' | awk -v m="$1" '$1==m {print $2; found=1} END {if(!found) print 0}'
}
total() { # total NAME_WITH_LABELS -> the metric summed over the nodes
    local url sum=0 v
    for url in $NODE_URLS; do
        v=$(CALLOPT=$url metric "$1")
        sum=$(awk -v a="$sum" -v b="$v" 'BEGIN{printf "%.0f", a + b}')
    done
    echo "$sum"
}
RUN=$(date +%s)$$
LOADAVG=$(cut -d' ' -f1 /proc/loadavg)

log "mix: p_return=$P_RETURN, $RETURNING returning visitors per thread; wrk -t$THREADS -c$CONNECTIONS -d$DURATION (warm-up $WARMUP)"
run_wrk warmup-callopt "$NODE_URLS" "w$RUN" prime "$WARMUP"; warm=$OUT
check_clean warmup-callopt "$warm"
[ "$(field returning "$warm")" -ge $((THREADS * RETURNING)) ] \
    || die "warm-up too short to see all $((THREADS * RETURNING)) returning visitors; raise WARMUP"
# Headroom: new visitors of the measured run, estimated from the warm-up rate with a margin.
secs=${DURATION%s}
leased=$(metric "callopt_pool_numbers_in_use{pool=\"$POOL_ID\"}")
expect_new=$(awk -v r="$(field rps "$warm")" -v p="$P_RETURN" -v s="$secs" -v u="$leased" \
    'BEGIN{printf "%.0f", u + 2*r*(1-p)*s}')
[ "$expect_new" -lt "$POOL_SIZE" ] \
    || die "a ${DURATION} run may lease ~$expect_new of $POOL_SIZE numbers: raise P_RETURN or shorten DURATION"
run_wrk warmup-nginx "$PAGE_ORIGIN" "wn$RUN" "" "$WARMUP"; warm=$OUT
check_clean warmup-nginx "$warm"

new0=$(total 'callopt_dni_requests_total{outcome="new"}')
ren0=$(total 'callopt_dni_requests_total{outcome="renewed"}')
bs0=$(total callopt_session_batch_size_sum); bc0=$(total callopt_session_batch_size_count)
run_wrk callopt "$NODE_URLS" "m$RUN"; DNI=$OUT
DNI_BUSY="$BUSY_SERVER/$BUSY_LOAD"
check_clean callopt "$DNI"
new1=$(total 'callopt_dni_requests_total{outcome="new"}')
ren1=$(total 'callopt_dni_requests_total{outcome="renewed"}')
bs1=$(total callopt_session_batch_size_sum); bc1=$(total callopt_session_batch_size_count)
util=$(metric "callopt_pool_utilisation{pool=\"$POOL_ID\"}")
awk -v u="$util" 'BEGIN{exit !(u < 1)}' || die "pool utilisation $util: pool exhausted, the run is void"
run_wrk nginx "$PAGE_ORIGIN" "n$RUN"; NGX=$OUT
NGX_BUSY="$BUSY_SERVER/$BUSY_LOAD"
check_clean nginx "$NGX"
alive "$CALLOPT_PID" || die "callopt died"
[ "$NODES" = 1 ] || alive "$CALLOPT_B_PID" || die "the second node died"

dni_rps=$(field rps "$DNI"); nginx_rps=$(field rps "$NGX")
new=$((${new1%.*} - ${new0%.*})); ren=$((${ren1%.*} - ${ren0%.*}))
echo "params: nodes $NODES, store $STORE, wrk -t$THREADS -c$CONNECTIONS -d$DURATION (warm-up $WARMUP), server on cpu$SERVER_CPU, wrk on cpu$LOAD_CPU, answer ${ANSWER_BYTES} bytes, load average before the runs $LOADAVG"
echo "mix: p_return=$P_RETURN ($((THREADS * RETURNING)) returning visitors); callopt served new=$new renewed=$ren; pool $POOL_SIZE numbers, utilisation after run $util"
batch=$(awk -v a="$bs0" -v b="$bs1" -v c="$bc0" -v d="$bc1" 'BEGIN{if (d>c) printf "%.1f", (b-a)/(d-c); else print "n/a"}')
echo "callopt: $((${bc1%.*} - ${bc0%.*})) session commits, mean batch $batch writes; p50 ms callopt=$(field p50_ms "$DNI") nginx=$(field p50_ms "$NGX")"
echo "cpu busy % (server core/wrk core): callopt=$DNI_BUSY nginx=$NGX_BUSY"
awk -v d="$dni_rps" -v n="$nginx_rps" 'BEGIN{printf "dni_rps=%.0f nginx_rps=%.0f ratio=%.3f\n", d, n, d/n}'
echo "dni_p99_ms=$(field p99_ms "$DNI") nginx_p99_ms=$(field p99_ms "$NGX")"
