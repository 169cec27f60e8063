#!/usr/bin/env bash
# The cost of sharing state between nodes: each benchmark on one node on SQLite, then on two
# nodes on one PostgreSQL and one Redis (NODES=2), on this machine in one run. See
# bench/README.md.
#   BENCHES ["dni sip"]   which benchmarks to run
# DNI: bench/dni.sh, each run against nginx as usual; prints both figures and their ratio, raw
# and as the ratio of the two runs' ratios to nginx (which takes out the machine's drift).
# SIP: bench/sip.sh with Callopt alone (PROXIES=callopt); prints the highest clean call rate of
# each and their ratio. Other environment overrides are passed on (NODES and STORE are set here).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCHES=${BENCHES:-"dni sip"}

run() { # run SCRIPT LABEL ENV... -> the run's last lines, echoed; sets OUT (all its output)
    local script=$1 label=$2
    shift 2
    OUT=$(env "$@" bash "$REPO/bench/$script") || { echo "$label: bench/$script failed" >&2; exit 1; }
    printf '== %s\n%s\n' "$label" "$OUT"
}
field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" <<<"$2" | head -1; }

if [[ " $BENCHES " == *" dni "* ]]; then
    run dni.sh "DNI, one node on SQLite" NODES=1 STORE=sqlite
    one=$(grep '^dni_rps=' <<<"$OUT")
    run dni.sh "DNI, two nodes on PostgreSQL and Redis" NODES=2
    two=$(grep '^dni_rps=' <<<"$OUT")
    awk -v a="$(field dni_rps "$one")" -v b="$(field dni_rps "$two")" \
        -v ra="$(field ratio "$one")" -v rb="$(field ratio "$two")" 'BEGIN {
        printf "dni: one_node_rps=%.0f two_nodes_rps=%.0f two_over_one=%.3f normalised_by_nginx=%.3f\n",
            a, b, b / a, rb / ra }'
fi
if [[ " $BENCHES " == *" sip "* ]]; then
    run sip.sh "SIP, one node on SQLite" NODES=1 STORE=sqlite REDIS=0 PROXIES=callopt
    one=$(field callopt_cps "$(grep '^callopt_cps=' <<<"$OUT")")
    run sip.sh "SIP, two nodes on PostgreSQL and Redis" NODES=2 PROXIES=callopt
    two=$(field callopt_cps "$(grep '^callopt_cps=' <<<"$OUT")")
    awk -v a="$one" -v b="$two" 'BEGIN {
        printf "sip: one_node_cps=%d two_nodes_cps=%d two_over_one=%s\n", a, b,
            (a > 0 ? sprintf("%.3f", b / a) : "n/a") }'
fi
