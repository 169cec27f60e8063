#!/usr/bin/env bash
# The cost of sharing state between nodes, for DNI: bench/dni.sh on one node on SQLite, then on
# two nodes on one PostgreSQL and one Redis (NODES=2), on this machine in one run, each against
# nginx as usual. Prints both figures and their ratio, raw and as the ratio of the two runs'
# ratios to nginx (which takes out the machine's drift between the runs). See bench/README.md.
# Takes the same environment overrides as bench/dni.sh (NODES and STORE are set here).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

run() { # run LABEL ENV... -> the run's last lines, echoed; sets RESULT (its dni/nginx line)
    local label=$1 out
    shift
    out=$(env "$@" bash "$REPO/bench/dni.sh") || { echo "$label: bench/dni.sh failed" >&2; exit 1; }
    printf '== %s\n%s\n' "$label" "$out"
    RESULT=$(grep '^dni_rps=' <<<"$out")
}
field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" <<<"$2"; }

run "one node on SQLite" NODES=1 STORE=sqlite
one=$RESULT
run "two nodes on PostgreSQL and Redis" NODES=2
two=$RESULT
awk -v a="$(field dni_rps "$one")" -v b="$(field dni_rps "$two")" \
    -v ra="$(field ratio "$one")" -v rb="$(field ratio "$two")" 'BEGIN {
    printf "one_node_rps=%.0f two_nodes_rps=%.0f two_over_one=%.3f normalised_by_nginx=%.3f\n",
        a, b, b / a, rb / ra }'
