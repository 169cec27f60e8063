#!/usr/bin/env bash
# Benchmarks the SIP router's failover (target 1 busy -> target 2 answers, ACK and BYE through
# the proxy) against Kamailio 5.6 with the dispatcher module doing the same, stepping the call
# rate up for each. See bench/README.md.
#
# Environment overrides (defaults in brackets):
#   RATES ["500 1000 1500 2000 2500 3000 3500 4000 5000 6000 7000 8000 10000"]  call rates (cps) to step
#                        through, ascending; a proxy stops at its first failing step
#   STEP_SECONDS [5]     length of each step: RATE*STEP_SECONDS calls (sipp -m)
#   WARMUP_RATE [100] WARMUP_CALLS [300]   warm-up for each proxy, must pass, not counted
#   MAX_RETRANS_PCT [1]  a step passes with zero failed calls and retransmissions (all sipp
#                        processes, every message) under this share of the calls, in percent
#   CALL_LOG_GRACE_MS [1000]   Callopt's step also needs its call log caught up (every
#                        record in the store) this long after the caller's last call ends
#   PROXIES ["callopt kamailio"]   which proxies to run (one alone prints n/a for the other)
#   LINGER_MS [5000]     how long each proxy keeps a finished transaction to absorb
#                        retransmissions: Kamailio's tm `wt_timer` (its default) and Callopt's
#                        `sip_linger_ms`; 32000 is RFC 3261's 64xT1 (Callopt's default)
#   SHM_MB [2048] PKG_MB [32]      Kamailio shared and private memory in MB (-m, -M)
#   KAM_MALLOC [fm]      Kamailio memory manager (-x): fm (fast), tlsf, or qm (Debian's default,
#                        built with memory debugging: about 3x the CPU per call)
#   SERVER_CPU [0] LOAD_CPU [1]    cores for the proxy and for the sipp processes
#   SERVER_QUOTA [100]   percent of the server core each proxy may use (a CPU cgroup, 10 ms
#                        period): below 100 the proxy runs out of CPU before sipp does, so
#                        the ladder measures the proxy and not the load generator; SQLite
#                        store only (a PostgreSQL or Redis would run outside the quota)
#   ROUNDS [1]           whole runs of both proxies, one after the other; above 1 it also prints
#                        the median of each figure and of the rounds' ratios (use an odd count)
#   KEEP_TMP [0]         1: keep the temp dir (sipp statistics, logs, configs, database)
#   STORE [sqlite]       postgres: Callopt's store on a PostgreSQL server of its own, sharing
#                        Callopt's core (bench/store.sh), instead of a SQLite file
#   REDIS [0]            1: Callopt reserves every attempt in a Redis of its own, sharing its
#                        core (the counters several nodes share)
#   NODES [1]            2: two Callopt nodes on one PostgreSQL and one Redis (STORE=postgres
#                        and REDIS=1 implied), all on the server core; two callers, each
#                        calling one node at half the rate
set -euo pipefail

RATES=${RATES:-"500 1000 1500 2000 2500 3000 3500 4000 5000 6000 7000 8000 10000"}
STEP_SECONDS=${STEP_SECONDS:-5}
WARMUP_RATE=${WARMUP_RATE:-100}
WARMUP_CALLS=${WARMUP_CALLS:-300}
MAX_RETRANS_PCT=${MAX_RETRANS_PCT:-1}
CALL_LOG_GRACE_MS=${CALL_LOG_GRACE_MS:-1000}
PROXIES=${PROXIES:-"callopt kamailio"}
LINGER_MS=${LINGER_MS:-5000}
[[ $LINGER_MS =~ ^[1-9][0-9]*$ ]] || { echo "LINGER_MS is milliseconds from 1, not '$LINGER_MS'" >&2; exit 2; }
SHM_MB=${SHM_MB:-2048}
PKG_MB=${PKG_MB:-32}
KAM_MALLOC=${KAM_MALLOC:-fm}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
KEEP_TMP=${KEEP_TMP:-0}
SERVER_QUOTA=${SERVER_QUOTA:-100}
NODES=${NODES:-1}
case "$NODES" in
    1) ;;
    2) STORE=postgres REDIS=1 ;;
    *) echo "NODES is 1 or 2, not $NODES" >&2; exit 2 ;;
esac
ROUNDS=${ROUNDS:-1}
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "ROUNDS is a count from 1, not '$ROUNDS'" >&2; exit 2; }
if [ "$ROUNDS" -gt 1 ]; then
    # The VM's speed drifts by a step or two of the ladder from one run to the next, and
    # either proxy may be the one a slow spell hits: each round is a whole run of both, and
    # the median of the rounds' ratios is the figure a single unlucky round does not move.
    summary=()
    for round in $(seq 1 "$ROUNDS"); do
        out=$(ROUNDS=1 bash "${BASH_SOURCE[0]}") || exit
        sed "s/^/round $round: /" <<<"$out"
        summary+=("$(grep '^callopt_cps=' <<<"$out")")
    done
    printf '%s\n' "${summary[@]}" | python3 -c '
import re, statistics, sys
rows = [dict(re.findall(r"(\w+)=(\S+)", line)) for line in sys.stdin]
def median(key):
    values = [float(r[key]) for r in rows if r.get(key, "n/a") != "n/a"]
    return statistics.median(values) if values else None
def show(v, fmt):
    return "n/a" if v is None else fmt.format(v)
print("rounds={} callopt_cps_median={} kamailio_cps_median={} ratio_median={} ratios={}".format(
    len(rows), show(median("callopt_cps"), "{:.0f}"), show(median("kamailio_cps"), "{:.0f}"),
    show(median("ratio"), "{:.2f}"), ",".join(r.get("ratio", "n/a") for r in rows)))'
    exit
fi
TRACKING_NUMBER="+12015550100" # what the caller dials (Request-URI user)
DEFAULT_NUMBER="+12015550199"  # the campaign's default number (not dialled)

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$REPO/bench/store.sh"
BIN="$REPO/target/release/callopt"
SCEN="$REPO/bench/sip"

log() { printf '[sip-bench] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# --- tools ---------------------------------------------------------------------------------
need_apt=()
command -v sipp >/dev/null || need_apt+=(sip-tester)
command -v kamailio >/dev/null || [ -x /usr/sbin/kamailio ] || need_apt+=(kamailio)
command -v curl >/dev/null || need_apt+=(curl)
command -v python3 >/dev/null || need_apt+=(python3)
command -v taskset >/dev/null || need_apt+=(util-linux)
if [ ${#need_apt[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || die "missing ${need_apt[*]} (install them, or run as root)"
    log "installing ${need_apt[*]}"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >&2
fi
KAMAILIO=$(command -v kamailio || echo /usr/sbin/kamailio)
KAM_MODULES=$(dirname "$(dpkg -L kamailio 2>/dev/null | grep '/modules/tm\.so$' | head -1)")
[ -f "$KAM_MODULES/dispatcher.so" ] || KAM_MODULES=/usr/lib/x86_64-linux-gnu/kamailio/modules
[ -f "$KAM_MODULES/dispatcher.so" ] || die "kamailio modules not found (tried $KAM_MODULES)"
[ "$(nproc)" -ge 2 ] || die "needs at least 2 cores (proxy and sipp pinned apart)"
for r in $RATES; do [[ $r =~ ^[0-9]+$ ]] && [ "$r" -gt 0 ] || die "RATES: bad rate '$r'"; done
[[ $SERVER_QUOTA =~ ^[0-9]+$ ]] && [ "$SERVER_QUOTA" -ge 10 ] && [ "$SERVER_QUOTA" -le 100 ] \
    || die "SERVER_QUOTA is a percentage from 10 to 100, not '$SERVER_QUOTA'"
if [ "$SERVER_QUOTA" != 100 ] && { [ "${STORE:-sqlite}" != sqlite ] || [ "${REDIS:-0}" = 1 ]; }; then
    die "SERVER_QUOTA applies to the SQLite store alone (a database server would run outside it)"
fi

if [[ " $PROXIES " == *" callopt "* ]]; then
    # Always build: a binary left from an earlier checkout would be measured otherwise.
    log "building target/release/callopt"
    (cd "$REPO" && cargo build --release -p callopt >&2)
    "$BIN" serve --help 2>/dev/null | grep -q -- '--sip-listen' \
        || die "$BIN has no 'serve --sip-listen' (rebuild: cargo build --release -p callopt)"
fi

# Both proxies ask for a 4 MiB UDP receive buffer (Kamailio's maxbuffer, Callopt's router);
# the kernel grants at most net.core.rmem_max, so raise it for the run when we may.
RMEM_MAX=$(cat /proc/sys/net/core/rmem_max 2>/dev/null || echo 0)
if [ "$RMEM_MAX" -lt 4194304 ] && [ "$(id -u)" -eq 0 ]; then
    sysctl -q -w net.core.rmem_max=4194304 >/dev/null 2>&1 || log "could not raise net.core.rmem_max"
fi

# --- temp dir and cleanup ------------------------------------------------------------------
TMP=$(mktemp -d /tmp/callopt-sip-bench.XXXXXX)
PIDS=()
QUOTA_CG=""
cleanup() {
    local rc=$?
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    [ -z "$QUOTA_CG" ] || rmdir "$QUOTA_CG" 2>/dev/null || true
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

# The proxies' CPU quota: a cgroup (v2, else v1's cpu hierarchy) that each proxy joins before
# it starts, so that its every process and thread share SERVER_QUOTA% of a core.
if [ "$SERVER_QUOTA" != 100 ]; then
    [ "$(id -u)" = 0 ] || die "SERVER_QUOTA needs root (a CPU cgroup)"
    quota_us=$((SERVER_QUOTA * 100))
    if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
        echo +cpu >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || true
        QUOTA_CG=/sys/fs/cgroup/callopt-sip-bench-$$
        mkdir "$QUOTA_CG" || die "could not create the cgroup $QUOTA_CG"
        echo "$quota_us 10000" >"$QUOTA_CG/cpu.max" || die "could not set $QUOTA_CG/cpu.max"
    elif [ -d /sys/fs/cgroup/cpu ]; then
        QUOTA_CG=/sys/fs/cgroup/cpu/callopt-sip-bench-$$
        mkdir "$QUOTA_CG" || die "could not create the cgroup $QUOTA_CG"
        echo 10000 >"$QUOTA_CG/cpu.cfs_period_us" && echo "$quota_us" >"$QUOTA_CG/cpu.cfs_quota_us" \
            || die "could not set the quota of $QUOTA_CG"
    else
        die "no CPU cgroup controller found for SERVER_QUOTA"
    fi
    log "proxies limited to $SERVER_QUOTA% of cpu$SERVER_CPU ($QUOTA_CG)"
fi
join_quota() { # join_quota: moves the calling (sub)shell into the proxies' CPU quota, if any
    [ -z "$QUOTA_CG" ] || echo "$BASHPID" >"$QUOTA_CG/cgroup.procs"
}

json() { # json FIELD < json  -> value (strings unquoted)
    python3 -c 'import json,sys; v=json.load(sys.stdin)[sys.argv[1]]; print(v if not isinstance(v,bool) else str(v).lower())' "$1"
}
free_port() { # a port free on 127.0.0.1 for both UDP and TCP (the SIP listeners take both)
    python3 - <<'EOF'
import socket
while True:
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    port = u.getsockname()[1]
    t = socket.socket()
    try:
        t.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        t.close()
        u.close()
    print(port)
    break
EOF
}
udp_taken() { # udp_taken PORT: true when something holds 127.0.0.1:PORT/udp
    ! python3 -c 'import socket,sys; socket.socket(socket.AF_INET,socket.SOCK_DGRAM).bind(("127.0.0.1",int(sys.argv[1])))' "$1" 2>/dev/null
}
sip_ping() { # sip_ping PORT: true when an OPTIONS to 127.0.0.1:PORT gets any SIP response
    python3 - "$1" <<'EOF'
import socket, sys, random
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
s.settimeout(0.5)
me = s.getsockname()[1]
tag = random.getrandbits(32)
msg = (f"OPTIONS sip:ping@127.0.0.1:{port} SIP/2.0\r\n"
       f"Via: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bK-ping-{tag}\r\n"
       f"From: <sip:ping@127.0.0.1:{me}>;tag={tag}\r\nTo: <sip:ping@127.0.0.1:{port}>\r\n"
       f"Call-ID: ping-{tag}@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
       f"Content-Length: 0\r\n\r\n")
s.sendto(msg.encode(), ("127.0.0.1", port))
data, _ = s.recvfrom(65535)
sys.exit(0 if data.startswith(b"SIP/2.0 ") else 1)
EOF
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
wait_up() { # wait_up NAME PID LOG SECONDS COMMAND...: wait_for, giving up early if PID exits
    local name=$1 pid=$2 logf=$3 deadline=$((SECONDS + $4)); shift 4
    until "$@" >/dev/null 2>&1; do
        alive "$pid" || die "$name exited: $(tail -5 "$logf" 2>/dev/null)"
        [ $SECONDS -lt $deadline ] || die "timed out waiting for $name (see $logf)"
        sleep 0.05
    done
}
stop() { # stop PID: terminate a process this script started, and forget it
    local pid=$1 p keep=()
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for p in "${PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}
CLK_TCK=$(getconf CLK_TCK)
proxy_ticks() { # proxy_ticks [FIELDS]: CPU ticks of $PROXY_PID (one pid or several) and their
    # children so far: user+system, or the kernel's part alone with FIELDS=sys
    local p t=0 pid expr='$14 + $15'
    [ "${1:-}" != sys ] || expr='$15'
    for p in $PROXY_PID $(for pid in $PROXY_PID; do pgrep -P "$pid" || true; done); do
        t=$((t + $(awk "{print $expr}" "/proc/$p/stat" 2>/dev/null || echo 0)))
    done
    echo "$t"
}
children_secs() { # children_secs FILE (written by `times >FILE` in this shell): CPU seconds
    # (user + system) of every child of this shell reaped so far, the sipp processes included.
    awk 'NR==2 {t=0; for (i=1;i<=2;i++) {split($i,a,/[ms]/); t+=a[1]*60+a[2]} printf "%.2f", t}' "$1"
}
sock_drops() { # sock_drops PORT: datagrams dropped at the UDP socket(s) on 127.0.0.1:PORT so far
    awk -v p="$(printf '0100007F:%04X' "$1")" '$2==p {d+=$NF} END {print d+0}' /proc/net/udp
}
udp_drops() { # datagrams dropped for full receive buffers or other receive errors, system-wide
    awk '/^Udp:/ {if (!h) {for (i=1;i<=NF;i++) k[i]=$i; h=1} else for (i=1;i<=NF;i++) if (k[i]=="InErrors") print $i}' /proc/net/snmp
}

ulimit -n 65536 2>/dev/null || true # sipp keeps a socket budget per open call

# The two targets, the same sipp scenarios and ports for both proxies.
BUSY_PORT=$(free_port)
ANSWER_PORT=$(free_port)
SIPP_COMMON=(-i 127.0.0.1 -nostdin -buff_size 4194304 -trace_err -trace_stat -fd 1)

# start_targets DIR -> TARGET_PIDS: target 1 (486) and target 2 (180, 200) on their ports.
# No -m: OPTIONS probes count as calls; they are told to finish (SIGUSR1) after each step.
start_targets() {
    local dir=$1 name scen port pid
    TARGET_PIDS=()
    for name in busy answer; do
        if [ $name = busy ]; then scen=uas_busy.xml port=$BUSY_PORT; else scen=uas_answer.xml port=$ANSWER_PORT; fi
        (cd "$dir" && exec taskset -c "$LOAD_CPU" timeout -k 5 $((STEP_SECONDS * 4 + 120)) \
            sipp -sf "$SCEN/$scen" -p "$port" "${SIPP_COMMON[@]}" -stf "$dir/$name.csv" \
            -error_file "$dir/$name.errors.log" -recv_timeout 10000 \
            >"$dir/$name.out" 2>&1) &
        pid=$!
        PIDS+=("$pid")
        TARGET_PIDS+=("$pid")
        local deadline=$((SECONDS + 10))
        until udp_taken "$port"; do
            alive "$pid" || die "sipp target $name did not start: $(tail -5 "$dir/$name.out")"
            [ $SECONDS -lt $deadline ] || die "sipp target $name did not bind :$port"
            sleep 0.02
        done
    done
}
# stop_targets: soft exit (ongoing calls finish, final statistics written), then a hard one.
stop_targets() {
    local pid deadline=$((SECONDS + 15))
    for pid in "${TARGET_PIDS[@]}"; do
        # The sipp under `timeout`: signal the child.
        pkill -USR1 -P "$pid" sipp 2>/dev/null || true
    done
    for pid in "${TARGET_PIDS[@]}"; do
        while alive "$pid" && [ $SECONDS -lt $deadline ]; do sleep 0.05; done
        stop "$pid"
    done
    # The ports must be free again for the next step.
    wait_for "target ports to be released" 10 target_ports_free
}
target_ports_free() { ! udp_taken "$BUSY_PORT" && ! udp_taken "$ANSWER_PORT"; }

# step_stats DIR CALLS RATE -> one line of key=value: the step's verdict and figures, from the
# caller's and the targets' final statistics CSV and the caller's per-call setup times.
step_stats() {
    python3 - "$1" "$2" "$3" "$MAX_RETRANS_PCT" <<'EOF'
import csv, glob, sys
d, calls, rate, max_pct = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
def last(name):
    try:
        rows = list(csv.reader(open(f"{d}/{name}.csv"), delimiter=";"))
    except OSError:
        return None
    rows = [r for r in rows if r]
    return dict(zip(rows[0], rows[-1])) if len(rows) > 1 else None
busy, answer = last("busy"), last("answer")
# One caller per node: their counters add up.
callers = [c for c in (last(f[len(d) + 1:-4]) for f in sorted(glob.glob(f"{d}/uac*.csv"))
                       if not f.endswith("_rtt.csv")) if c]
if not callers:
    print("ok=0 reason=no_caller_statistics calls=0 succeeded=0 failed=0 retrans=0 retrans_pct=0 p50=n/a p99=n/a")
    sys.exit()
n = lambda s, k: int(s.get(k, 0) or 0) if s else 0
uac = {k: sum(n(c, k) for c in callers) for k in ("SuccessfulCall(C)", "FailedCall(C)",
       "Retransmissions(C)", "DeadCallMsgs(C)", "OutOfCallMsgs(C)")}
succeeded = n(uac, "SuccessfulCall(C)")
failed = n(uac, "FailedCall(C)") + n(busy, "FailedCall(C)") + n(answer, "FailedCall(C)")
retrans = sum(n(s, "Retransmissions(C)") for s in (uac, busy, answer))
dead = sum(n(s, "DeadCallMsgs(C)") + n(s, "OutOfCallMsgs(C)") for s in (uac, busy, answer))
pct = 100.0 * retrans / calls
times = []
for f in glob.glob(f"{d}/uac_*_rtt.csv"):
    for r in csv.reader(open(f), delimiter=";"):
        if len(r) == 3 and r[2] == "setup":
            times.append(float(r[1]))
times.sort()
pc = lambda p: f"{times[min(len(times) - 1, max(0, -(-len(times) * p // 100) - 1))]:.0f}" if times else "n/a"
reasons = []
if succeeded != calls: reasons.append(f"succeeded_{succeeded}_of_{calls}")
if failed: reasons.append("failed_calls")
if busy is None or answer is None: reasons.append("no_target_statistics")
# Every call must have been tried on target 1 first (its count also holds OPTIONS probes).
elif n(busy, "TotalCallCreated") < calls: reasons.append("target_1_skipped")
if pct >= max_pct: reasons.append("retransmissions")
print(f"ok={0 if reasons else 1} reason={','.join(reasons) or 'none'} calls={calls} "
      f"succeeded={succeeded} failed={failed} retrans={retrans} retrans_pct={pct:.2f} "
      f"late_msgs={dead} p50={pc(50)} p99={pc(99)} setup_samples={len(times)}")
EOF
}
gcd() { local a=$1 b=$2 t; while [ "$b" -ne 0 ]; do t=$((a % b)); a=$b; b=$t; done; echo "$a"; }
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $2"; }

# run_step PROXY "PORT..." RATE CALLS TAG -> STEP (the step_stats line, plus the sipp exit
# code, wall time, CPU of the proxy and of sipp, and UDP drops). With several ports (nodes), one
# caller per port places an equal share of the calls at an equal share of the rate.
run_step() {
    local proxy=$1 ports=($2) rate=$3 calls=$4 tag=$5
    local dir="$TMP/$proxy/$tag" rc=0 t0 t1 p0 p1 k0 k1 d0 d1 freq n=${#ports[@]} i port pids=()
    local each_rate=$((rate / n)) each_calls=$((calls / n))
    freq=$(gcd "$each_calls" "$each_rate")
    mkdir -p "$dir"
    times >"$dir/times.0"
    start_targets "$dir"
    proxy_drops_now() { local p s=0; for p in "${ports[@]}"; do s=$((s + $(sock_drops "$p"))); done; echo $s; }
    p0=$(proxy_ticks); k0=$(proxy_ticks sys); d0=$(udp_drops); local pd0; pd0=$(proxy_drops_now); t0=$(date +%s.%N)
    # Bounded: -m calls, per-message timeout, a global timeout, and `timeout` around it all.
    # -l: 4 s worth of simultaneous calls, so sipp does not throttle itself before the proxy
    # fails; -rtt_freq divides -m, so every call's setup time is written.
    for i in "${!ports[@]}"; do
        local name=uac; [ "$i" = 0 ] || name=uac$i
        (cd "$dir" && exec taskset -c "$LOAD_CPU" timeout -k 5 $((STEP_SECONDS * 3 + 60)) \
            sipp "127.0.0.1:${ports[$i]}" -sf "$SCEN/uac.xml" -s "$TRACKING_NUMBER" -p "$(free_port)" \
            "${SIPP_COMMON[@]}" -stf "$dir/$name.csv" -error_file "$dir/$name.errors.log" \
            -timer_resol 1 -r "$each_rate" -m "$each_calls" -l $((each_rate * 4 + 100)) -trace_rtt \
            -rtt_freq "$freq" -recv_timeout 10000 -timeout $((STEP_SECONDS * 3 + 40))s -timeout_error \
            >"$dir/$name.out" 2>&1) &
        pids+=($!)
    done
    for i in "${!pids[@]}"; do
        wait "${pids[$i]}" || rc=$?
    done
    calls=$((each_calls * n))
    # Callopt writes call records at a lower priority than it routes calls: a rate it passes
    # only by leaving records unwritten is not a rate it sustains. The step ends when its call
    # log has caught up, and fails when that takes longer than the grace; its CPU counts.
    local behind=0 drain_ms=0
    if [ "$proxy" = callopt ]; then
        local g0; g0=$(date +%s%N)
        while :; do
            behind=$(call_log_backlog) || behind=unknown
            [ "$behind" = 0 ] && break
            [ $((($(date +%s%N) - g0) / 1000000)) -ge "$CALL_LOG_GRACE_MS" ] && break
            sleep 0.02
        done
        drain_ms=$((($(date +%s%N) - g0) / 1000000))
    fi
    t1=$(date +%s.%N); p1=$(proxy_ticks); k1=$(proxy_ticks sys); d1=$(udp_drops)
    local drops_proxy drops_targets
    drops_proxy=$(($(proxy_drops_now) - pd0))
    drops_targets=$(($(sock_drops "$BUSY_PORT") + $(sock_drops "$ANSWER_PORT")))
    stop_targets
    times >"$dir/times.1"
    STEP="$(step_stats "$dir" "$calls" "$rate") sipp_rc=$rc"
    STEP+=" secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}')"
    # The proxy's own CPU (all its processes): share of one core, and per call.
    STEP+=" proxy_cpu=$(awk -v d=$((p1 - p0)) -v k="$CLK_TCK" -v a="$t0" -v b="$t1" 'BEGIN{printf "%.0f", 100*d/k/(b-a)}')"
    STEP+=" proxy_us_per_call=$(awk -v d=$((p1 - p0)) -v k="$CLK_TCK" -v n="$calls" 'BEGIN{printf "%.0f", 1e6*d/k/n}')"
    # Of which in the kernel (system time: the UDP stack's sends and receives, mostly).
    STEP+=" proxy_sys_us_per_call=$(awk -v d=$((k1 - k0)) -v k="$CLK_TCK" -v n="$calls" 'BEGIN{printf "%.0f", 1e6*d/k/n}')"
    # The three sipp processes' CPU over the caller's run, as a share of their one core.
    STEP+=" sipp_cpu=$(awk -v a="$(children_secs "$dir/times.0")" -v b="$(children_secs "$dir/times.1")" -v s="$t0" -v e="$t1" 'BEGIN{printf "%.0f", 100*(b-a)/(e-s)}')"
    # UDP datagrams the kernel dropped (a full receive buffer somewhere) during the step.
    # Where: at the proxy's socket, at the targets' (the rest: the caller's).
    STEP+=" udp_drops=$((d1 - d0)) proxy_drops=$drops_proxy target_drops=$drops_targets"
    if [ "$proxy" = callopt ]; then
        STEP+=" call_log_behind=$behind call_log_drain_ms=$drain_ms"
        if [ "$behind" != 0 ]; then
            if [ "$(field ok "$STEP")" = 1 ]; then
                STEP=${STEP/ok=1 reason=none/ok=0 reason=call_log_behind}
            else
                STEP=${STEP/ reason=/ reason=call_log_behind,}
            fi
        fi
    fi
    if [ "$rc" -ne 0 ] && [ "$(field ok "$STEP")" = 1 ]; then
        STEP=${STEP/ok=1 reason=none/ok=0 reason=sipp_exit_$rc}
    fi
    log "$proxy $tag ($rate cps, $calls calls): $STEP"
    # A proxy that ran out of memory makes the step void, not a capacity figure.
    if [ "$proxy" = kamailio ] && grep -q 'out of mem' "$TMP/kamailio/kamailio.log"; then
        die "kamailio ran out of shared memory at $rate cps (raise SHM_MB, now $SHM_MB): $(grep -m1 'out of mem' "$TMP/kamailio/kamailio.log")"
    fi
}

# call_log_backlog -> call records Callopt's nodes hold that are not in the store yet.
call_log_backlog() {
    local url s=0 v
    for url in $CALLOPT ${CALLOPT_B:-}; do
        # A node that does not report it fails the check (unknown), rather than passing as 0.
        v=$(curl -sf "$url/metrics" \
            | awk '/^callopt_call_log_backlog[{ ]/ {s+=$NF; n++} END {if (!n) exit 1; printf "%d", s}') \
            || return 1
        s=$((s + v))
    done
    echo "$s"
}

# bench_proxy NAME PORT -> BEST (highest passing rate, 0 if none); per-rate results in
# $TMP/NAME/results (rate ok p50 p99 sipp_cpu proxy_us_per_call proxy_cpu proxy_sys_us_per_call).
bench_proxy() {
    local name=$1 port=$2 rate
    BEST=0
    : >"$TMP/$name/results"
    run_step "$name" "$port" "$WARMUP_RATE" "$WARMUP_CALLS" warmup
    [ "$(field ok "$STEP")" = 1 ] \
        || die "$name: warm-up at $WARMUP_RATE cps failed ($STEP); see $TMP/$name/warmup"
    for rate in $RATES; do
        run_step "$name" "$port" "$rate" $((rate * STEP_SECONDS)) "r$rate"
        echo "$rate $(field ok "$STEP") $(field p50 "$STEP") $(field p99 "$STEP") $(field sipp_cpu "$STEP") $(field proxy_us_per_call "$STEP") $(field proxy_cpu "$STEP") $(field proxy_sys_us_per_call "$STEP")" \
            >>"$TMP/$name/results"
        [ "$(field ok "$STEP")" = 1 ] || break
        BEST=$rate
    done
    if [ "$(field ok "$STEP")" != 1 ] && [ "$(field sipp_cpu "$STEP")" -ge 90 ]; then
        log "$name: sipp used $(field sipp_cpu "$STEP")% of core $LOAD_CPU at the failing step; the figure may be sipp's limit"
    fi
    log "$name: highest clean rate $BEST cps"
}

LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)
log "temp dir $TMP; targets busy :$BUSY_PORT answer :$ANSWER_PORT; load average $LOADAVG"
CALLOPT_CPS=n/a
KAMAILIO_CPS=n/a

# --- callopt -------------------------------------------------------------------------------
if [[ " $PROXIES " == *" callopt "* ]]; then
    mkdir -p "$TMP/callopt"
    DB=$(bench_database "$TMP" "$SERVER_CPU") || die "no database"
    unset RUST_LOG
    (cd "$TMP" && "$BIN" account create --name bench --db "$DB") >"$TMP/account.txt" # no stray callopt.toml
    API_KEY=$(sed -n 's/^api_key: //p' "$TMP/account.txt")
    [ -n "$API_KEY" ] || die "no api key in: $(cat "$TMP/account.txt")"
    HTTP_PORT=$(free_port)
    CALLOPT_SIP_PORT=$(free_port)
    if [ "${REDIS:-0}" = 1 ]; then
        CALLOPT_REDIS_URL=$(bench_redis "$TMP" "$SERVER_CPU") || die "no Redis"
        PIDS+=("$(cat "$TMP/redis.pid")")
        export CALLOPT_REDIS_URL
    fi
    # start_node NAME HTTP_PORT SIP_PORT -> PID: one `callopt serve` on the server core.
    start_node() {
        local name=$1 http=$2 sip=$3 clog="$TMP/$1.log"
        (cd "$TMP" && join_quota && CALLOPT_NODE_NAME=$name CALLOPT_LOG=warn CALLOPT_SIP_LINGER_MS=$LINGER_MS exec taskset -c "$SERVER_CPU" \
            "$BIN" serve --listen "127.0.0.1:$http" --sip-listen "127.0.0.1:$sip" --db "$DB" \
            >"$TMP/$name.out" 2>"$clog") &
        PID=$!
        PIDS+=("$PID")
        wait_up "$name to listen" "$PID" "$clog" 60 grep -q '^listening on http://' "$TMP/$name.out"
        wait_up "$name's SIP router" "$PID" "$clog" 30 \
            grep -q "^sip on udp:127.0.0.1:$sip" "$TMP/$name.out"
        wait_up "$name /healthz" "$PID" "$clog" 30 curl -sf "http://127.0.0.1:$http/healthz"
        wait_up "$name to answer SIP on :$sip" "$PID" "$clog" 30 sip_ping "$sip"
    }
    start_node callopt "$HTTP_PORT" "$CALLOPT_SIP_PORT"
    CALLOPT_PID=$PID
    CALLOPT="http://127.0.0.1:$HTTP_PORT"
    log "callopt at $CALLOPT, SIP udp:127.0.0.1:$CALLOPT_SIP_PORT (pid $CALLOPT_PID)"

    api() { # api METHOD PATH [JSON]
        local out code
        out=$(curl -sS -X "$1" "$CALLOPT$2" -H "Authorization: Bearer $API_KEY" \
            -H 'Content-Type: application/json' ${3:+--data "$3"} -w '\n%{http_code}')
        code=${out##*$'\n'}
        out=${out%$'\n'*}
        [[ $code == 2* ]] || die "$1 $2 -> $code: $out"
        printf '%s' "$out"
    }
    # Target 1 (tier 1) is always tried first; target 2 (tier 2) once it has failed.
    T1=$(api POST /v1/targets "{\"name\":\"busy\",\"destination\":\"sip:busy@127.0.0.1:$BUSY_PORT\",\"priority\":1}" | json id)
    T2=$(api POST /v1/targets "{\"name\":\"answer\",\"destination\":\"sip:answer@127.0.0.1:$ANSWER_PORT\",\"priority\":2}" | json id)
    PLAN=$(api POST /v1/routing-plans "{\"name\":\"failover\",\"targets\":[$T1,$T2],\"reroute_on\":[\"busy\",\"no_answer\",\"failure\",\"unreachable\"],\"max_attempts\":3}" | json id)
    POOL=$(api POST /v1/pools '{"name":"bench"}' | json id)
    api POST /v1/numbers "{\"e164\":\"$TRACKING_NUMBER\",\"pool_id\":$POOL}" >/dev/null
    CAMPAIGN=$(api POST /v1/campaigns "{\"name\":\"bench\",\"default_number\":\"$DEFAULT_NUMBER\",\"pool_id\":$POOL,\"routing_plan_id\":$PLAN}" | json id)
    log "callopt: targets $T1 $T2, plan $PLAN, pool $POOL with $TRACKING_NUMBER, campaign $CAMPAIGN"

    PROXY_PID=$CALLOPT_PID
    SIP_PORTS=$CALLOPT_SIP_PORT
    if [ "$NODES" = 2 ]; then
        # Started once the campaign exists: it loads it at start.
        B_SIP_PORT=$(free_port)
        start_node callopt-b "$(free_port)" "$B_SIP_PORT"
        CALLOPT_B_PID=$PID
        CALLOPT_B=$(sed -n 's#^listening on \(http://[0-9.:]*\).*#\1#p' "$TMP/callopt-b.out" | head -1)
        PROXY_PID="$CALLOPT_PID $CALLOPT_B_PID"
        SIP_PORTS="$CALLOPT_SIP_PORT $B_SIP_PORT"
        log "second node: SIP udp:127.0.0.1:$B_SIP_PORT (pid $CALLOPT_B_PID), Redis at $CALLOPT_REDIS_URL"
    fi
    bench_proxy callopt "$SIP_PORTS"
    CALLOPT_CPS=$BEST
    # Its work, as it recorded it: the call counters (once every placed call is counted, or
    # after a few seconds), the call log's group commits and the newest call in the log.
    placed=$(awk '{s+=$1*'"$STEP_SECONDS"'} END {print s+'"$WARMUP_CALLS"'}' "$TMP/callopt/results")
    # Every series carries the node's name; drop it so the labels read as before.
    metrics() { curl -sf "$CALLOPT/metrics" | sed -E 's/\{node="[^"]*"\}//; s/\{node="[^"]*",/{/'; }
    # Calls are counted by the node that took them: every node's count.
    counted() {
        local url s=0
        for url in $CALLOPT ${CALLOPT_B:-}; do
            s=$((s + $(curl -sf "$url/metrics" | awk '/^callopt_calls_total\{/ {s+=$NF} END {printf "%d", s}')))
        done
        echo "$s"
    }
    deadline=$((SECONDS + 10))
    while [ "$(counted)" -lt "$placed" ] && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
    newest=$(api GET '/v1/calls?limit=1')
    CALLOPT_LOG_LINE="callopt: $placed calls placed, $(counted) counted by the nodes; node a's callopt_calls_total $(metrics | awk -F'[{}"= ]+' '/^callopt_calls_total\{/ {printf "%s%s=%s", (n++?" ":""), $3, $NF}')"
    CALLOPT_LOG_LINE+="; call log commits $(metrics | awk '/^callopt_call_batch_size_(sum|count) / {v[$1]=$2} END {c=v["callopt_call_batch_size_count"]; if (c>0) printf "%d, mean batch %.1f records", c, v["callopt_call_batch_size_sum"]/c; else printf "n/a"}')"
    CALLOPT_LOG_LINE+="; newest call: $(python3 -c '
import json, sys
c = json.load(sys.stdin)["items"][0]
print(c["outcome"] + ", attempts", " -> ".join("{}({})".format(a["outcome"], a["sip_status"]) for a in c["attempts"]))' <<<"$newest" 2>/dev/null || echo "none listed")"
    log "$CALLOPT_LOG_LINE"
    alive "$CALLOPT_PID" || die "callopt died (see $TMP/callopt.log)"
    stop "$CALLOPT_PID"
    if [ "$NODES" = 2 ]; then
        alive "$CALLOPT_B_PID" || die "the second node died (see $TMP/callopt-b.log)"
        stop "$CALLOPT_B_PID"
    fi
fi

# --- kamailio ------------------------------------------------------------------------------
if [[ " $PROXIES " == *" kamailio "* ]]; then
    mkdir -p "$TMP/kamailio"
    KAM_PORT=$(free_port)
    # Dispatcher set 1: "setid destination flags priority"; algorithm 8 tries the highest
    # priority first, so target 1, then target 2.
    printf '1 sip:127.0.0.1:%s 0 10\n1 sip:127.0.0.1:%s 0 5\n' "$BUSY_PORT" "$ANSWER_PORT" \
        >"$TMP/kamailio/dispatcher.list"
    sed -e "s#@SIP_PORT@#$KAM_PORT#g" -e "s#@MODULES@#$KAM_MODULES/#g" -e "s#@LINGER_MS@#$LINGER_MS#g" \
        -e "s#@DISPATCHER_LIST@#$TMP/kamailio/dispatcher.list#g" \
        "$SCEN/kamailio.cfg.in" >"$TMP/kamailio/kamailio.cfg"
    "$KAMAILIO" -c -f "$TMP/kamailio/kamailio.cfg" >"$TMP/kamailio/check.log" 2>&1 \
        || die "kamailio config check failed: $(tail -5 "$TMP/kamailio/check.log")"
    # -DD: stays in the foreground (its children with it); every process on SERVER_CPU.
    (join_quota && exec taskset -c "$SERVER_CPU" "$KAMAILIO" -f "$TMP/kamailio/kamailio.cfg" -DD -E \
        -x "$KAM_MALLOC" -m "$SHM_MB" -M "$PKG_MB" -P "$TMP/kamailio/kamailio.pid" -Y "$TMP/kamailio" \
        >"$TMP/kamailio/stdout.log" 2>"$TMP/kamailio/kamailio.log") &
    KAM_PID=$!
    PIDS+=("$KAM_PID")
    wait_up "kamailio to answer SIP on :$KAM_PORT" "$KAM_PID" "$TMP/kamailio/kamailio.log" 30 \
        sip_ping "$KAM_PORT"
    log "kamailio $("$KAMAILIO" -v | sed -n 's/^version: kamailio \([^ ]*\).*/\1/p') at udp:127.0.0.1:$KAM_PORT (pid $KAM_PID)"

    PROXY_PID=$KAM_PID
    bench_proxy kamailio "$KAM_PORT"
    KAMAILIO_CPS=$BEST
    alive "$KAM_PID" || die "kamailio died (see $TMP/kamailio/kamailio.log)"
    stop "$KAM_PID"
fi

# --- report --------------------------------------------------------------------------------
# Setup times of each proxy at the highest rate both passed (the same offered load).
setup_at() { # setup_at NAME RATE -> "p50=… p99=…"
    awk -v r="$2" '$1==r && $2==1 {p50=$3; p99=$4} END {printf "p50=%s p99=%s", (p50==""?"n/a":p50), (p99==""?"n/a":p99)}' \
        "$TMP/$1/results" 2>/dev/null || echo "p50=n/a p99=n/a"
}
if [ "$CALLOPT_CPS" != n/a ] && [ "$KAMAILIO_CPS" != n/a ]; then
    COMMON=$((CALLOPT_CPS < KAMAILIO_CPS ? CALLOPT_CPS : KAMAILIO_CPS))
elif [ "$CALLOPT_CPS" != n/a ]; then COMMON=$CALLOPT_CPS
else COMMON=$KAMAILIO_CPS
fi
echo "params: nodes $NODES, store $STORE, redis ${REDIS:-0}, rates ${RATES// /,} cps, ${STEP_SECONDS}s per step (rate*${STEP_SECONDS} calls), pass = 0 failed calls and retransmissions < ${MAX_RETRANS_PCT}% of calls; proxy on cpu$SERVER_CPU (quota $SERVER_QUOTA%), sipp (caller + 2 targets) on cpu$LOAD_CPU; finished transactions kept ${LINGER_MS} ms by both; kamailio children=1 -x $KAM_MALLOC -m $SHM_MB -M $PKG_MB; load average before the run $LOADAVG"
[ -z "${CALLOPT_LOG_LINE:-}" ] || echo "$CALLOPT_LOG_LINE"
for p in callopt kamailio; do
    [ -f "$TMP/$p/results" ] || continue
    echo "$p steps (cps:verdict/setup p50,p99 ms/proxy cpu us per call,of which kernel/cpu % proxy,sipp): $(awk '{printf "%s%s:%s/%s,%s/%s,%s/%s,%s", (NR>1?" ":""), $1, ($2==1?"ok":"FAIL"), $3, $4, $6, $8, $7, $5}' "$TMP/$p/results")"
done
echo "setup times at ${COMMON:-0} cps (the highest rate both passed), in steps of sipp's coarse clock (see bench/README.md):"
if [ "$CALLOPT_CPS" != n/a ] && [ "$KAMAILIO_CPS" != n/a ] && [ "$KAMAILIO_CPS" -gt 0 ]; then
    ratio=$(awk -v c="$CALLOPT_CPS" -v k="$KAMAILIO_CPS" 'BEGIN{printf "%.2f", c/k}')
else
    ratio=n/a
fi
echo "callopt_cps=$CALLOPT_CPS kamailio_cps=$KAMAILIO_CPS ratio=$ratio"
echo "callopt_setup_ms $(setup_at callopt "$COMMON")"
echo "kamailio_setup_ms $(setup_at kamailio "$COMMON")"
