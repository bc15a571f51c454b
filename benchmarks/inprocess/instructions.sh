#!/usr/bin/env bash
# Instructions per request for SERVER (dartle|uvicorn|canned) at pipeline DEPTH in
# SCENARIO (hello|framework|ws; see run.py), from the difference of two callgrind runs
# (so start-up cost cancels out).
#   benchmarks/inprocess/instructions.sh dartle 16
#   benchmarks/inprocess/instructions.sh uvicorn 1 framework
set -euo pipefail
server=${1:-dartle}; depth=${2:-16}; scenario=${3:-hello}
here=$(cd "$(dirname "$0")" && pwd)
py=${PYTHON:-$here/../../.venv/bin/python}
count() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$py" "$here/run.py" "$server" "$1" "$depth" "$scenario" 2>&1 |
    awk '/Collected/ {print $4}'
}
a=$(count 1600); b=$(count 4800)
echo "$server $scenario depth=$depth instructions/request: $(( (b - a) / 3200 ))"
