#!/usr/bin/env bash
# Instructions per request for SERVER (dartle|uvicorn|canned) at pipeline DEPTH in
# SCENARIO (hello|framework|ws; see run.py) on CONNECTIONS connections served in the same
# loop iterations (default 1), from the difference of two callgrind runs (so start-up
# cost cancels out).
#   benchmarks/inprocess/instructions.sh dartle 16
#   benchmarks/inprocess/instructions.sh uvicorn 1 framework
#   benchmarks/inprocess/instructions.sh dartle 1 hello 64
set -euo pipefail
server=${1:-dartle}; depth=${2:-16}; scenario=${3:-hello}; connections=${4:-1}
here=$(cd "$(dirname "$0")" && pwd)
py=${PYTHON:-$here/../../.venv/bin/python}
count() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$py" "$here/run.py" "$server" "$1" "$depth" "$scenario" "$connections" 2>&1 |
    awk '/Collected/ {print $4}'
}
# request counts: about 1600 and 4800, multiples of what one round feeds
round=$(( depth * connections ))
n1=$(( (1600 + round - 1) / round * round )); n2=$(( n1 + (3200 + round - 1) / round * round ))
a=$(count $n1); b=$(count $n2)
on=""; [ "$connections" = 1 ] || on=" connections=$connections"
echo "$server $scenario depth=$depth$on instructions/request: $(( (b - a) / (n2 - n1) ))"
