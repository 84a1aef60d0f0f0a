#!/bin/sh
# Side-by-side benchmark of Donjon (A) against a fresh Orthanc 1.10.1 (B), with the shared harness.
#   benchmarks/run_vs_orthanc.sh PROFILE [ROUNDS] [extra args for bench.py run]
# PROFILE: tiny (2,000 x 1.5 KB), ct (500 x 0.5 MB) or big (20,000 x 1.5 KB).
# Data sets are generated once into .bench/data; results go to .bench/results/PROFILE-<date>.json.
set -e
cd "$(dirname "$0")/.."
ROOT=$(pwd)
HARNESS=${DONJON_BENCH_HARNESS:-$ROOT/../shared/bench}
PY=${PYTHON:-$ROOT/.venv/bin/python}
[ -x "$PY" ] || PY=python3
PROFILE=${1:-tiny}
ROUNDS=${2:-4}
shift 2 || true
DATA=$ROOT/.bench/data/$PROFILE
mkdir -p "$ROOT/.bench/data" "$ROOT/.bench/results"
if [ ! -f "$DATA/manifest.json" ]; then
    case $PROFILE in
        tiny) "$PY" "$HARNESS/bench.py" gen "$DATA" --profile tiny --patients 50 --studies 2 --series 2 --instances 10 ;;
        ct) "$PY" "$HARNESS/bench.py" gen "$DATA" --profile ct --patients 5 --studies 2 --series 2 --instances 25 ;;
        big) "$PY" "$HARNESS/bench.py" gen "$DATA" --profile tiny --patients 500 --studies 2 --series 2 --instances 10 ;;
        *) echo "unknown profile $PROFILE"; exit 2 ;;
    esac
fi
# bytecode as a regular install has it (an editable one under PYTHONDONTWRITEBYTECODE has none, and
# compiling at start-up adds ~11 MB to the peak RSS)
"$PY" -m compileall -q src >/dev/null
WORK=$(mktemp -d /tmp/donjon-bench-XXXXXX)
PORT=${DONJON_BENCH_PORT:-18143}
DPORT=${DONJON_BENCH_DICOM_PORT:-18144}
cat > "$WORK/config.json" <<JSON
{ "HttpPort": $PORT, "DicomPort": $DPORT, "StorageDirectory": "$WORK/storage" }
JSON
"$PY" -m donjon "$WORK/config.json" > "$WORK/donjon.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$WORK"' EXIT INT TERM
for i in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$PORT/system" >/dev/null 2>&1 && break
    sleep 0.1
done
OUT=$ROOT/.bench/results/$PROFILE-$(date +%Y%m%d-%H%M%S).json
"$PY" "$HARNESS/orthanc_baseline.py" --data "$DATA" --env TCP_NODELAY=1 \
    --against "http://127.0.0.1:$PORT,dicom=$DPORT,aet=ORTHANC,pid=$PID,storage=$WORK/storage,label=donjon" \
    -- --rounds "$ROUNDS" --json "$OUT" "$@"
echo "results: $OUT"
