#!/usr/bin/env bash
# A 20-item batch (4 contents x 5 styles, 128 px, 20 iterations, caffe weights) on this
# machine: the local backend on a process pool, the Ray backend on a two-node local cluster,
# again with a Ray worker killed (SIGKILL) 25 s into the batch, a 5-item pool batch with a
# pool worker killed, and last the local backend in one process.
#   flock /tmp/estilo-heavy.lock benchmarks/batch.sh WORK_DIR [IMAGES_DIR]
# BATCH_OPTS replaces the estilo options, KILL_AFTER (s) the kill delay, ONLY=quick skips
# the last two runs. WORK_DIR gets the inputs, the outputs and log.txt. IMAGES_DIR (optional) adds real photos
# and paintings (tubingen, starry_night, the_scream, shipwreck); otherwise generated ones.
set -uo pipefail
cd "$(dirname "$0")/.."
WORK=${1:?WORK_DIR}; IMAGES=${2:-}
PY=${PY:-.venv/bin/python}; export PYTHONPATH=$PWD/src RAY_USAGE_STATS_ENABLED=0 RAY_AUTH_MODE=disabled
read -ra OPTS <<< "${BATCH_OPTS:---size 128 --iterations 20 --scales 1 --device cpu -q}"
KILL_AFTER=${KILL_AFTER:-25}; ONLY=${ONLY:-}  # ONLY=quick: pool, ray, ray-killed only
mkdir -p "$WORK/in/content" "$WORK/in/style"; LOG=$WORK/log.txt
"$PY" - "$WORK/in" "$IMAGES" <<'PY'
import sys, shutil
from pathlib import Path
from PIL import Image, ImageOps
sys.path.insert(0, "tests")
from conftest import make_content, make_style
out, images = Path(sys.argv[1]), Path(sys.argv[2]) if sys.argv[2] else None
photo = Image.open("src/estilo/data/examples/content.jpg").convert("RGB")
photo.save(out / "content/photo.jpg"); ImageOps.mirror(photo).save(out / "content/mirrored.jpg")
make_content((256, 192)).save(out / "content/synthetic.png")
shutil.copy("src/estilo/data/examples/style.jpg", out / "style/bundled.jpg")
make_style((256, 256)).save(out / "style/swirls.png")
for name, kind in [("tubingen", "content"), ("starry_night", "style"),
                   ("the_scream", "style"), ("shipwreck", "style")]:
    if images and (images / f"{name}.jpg").is_file():
        shutil.copy(images / f"{name}.jpg", out / kind / f"{name}.jpg")
    elif kind == "content":
        ImageOps.flip(photo).save(out / "content/flipped.jpg")
    else:
        make_style((256, 256)).rotate(len(name) * 20).save(out / f"style/{name}.png")
PY
run() {  # run LABEL CONTENT ARGS...: time one batch and log its summary line
  local label=$1 content=$2; shift 2; local start=$(date +%s.%N)
  "$PY" -m estilo batch "$content" --style "$WORK/in/style" "${OPTS[@]}" "$@" 2>&1 \
    | grep -v "^\s*$" | tail -n 3 | sed "s/^/[$label] /" >> "$LOG"
  echo "[$label] wall $(awk "BEGIN {print $(date +%s.%N) - $start}") s" >> "$LOG"
}
kill_later() {  # kill_later PARENT_PATTERN CHILD_PATTERN: in 25 s, SIGKILL one matching worker
  ( sleep "$KILL_AFTER"; parents=$(pgrep -d, -f "$1" || true)
    pid=$(pgrep -P "${parents:-0}" -f -o "$2" || true)
    [ -n "$pid" ] && kill -9 "$pid" && echo "[kill] SIGKILL pid $pid ($2) at +$KILL_AFTER s" >> "$LOG" ) &
  KILLER=$!
}
echo "== $(date -u) $(nproc) cores; ${OPTS[*]}" >> "$LOG"
run local-pool "$WORK/in/content" -o "$WORK/pool"
PORT=$((20000 + RANDOM % 20000))
ray_cmd=$(dirname "$PY")/ray
"$ray_cmd" start --head --port=$PORT --num-cpus=1 --include-dashboard=false --block > "$WORK/ray-head.log" 2>&1 & HEAD=$!
sleep 8
"$ray_cmd" start --address=127.0.0.1:$PORT --num-cpus=1 --block > "$WORK/ray-worker.log" 2>&1 & NODE=$!
sleep 8
run ray-2-nodes "$WORK/in/content" -o "$WORK/ray" --backend ray --address 127.0.0.1:$PORT
kill_later "ray/raylet/raylet" "^ray::run_task"   # a Ray worker (raylets start them)
run ray-killed "$WORK/in/content" -o "$WORK/ray-killed" --backend ray --address 127.0.0.1:$PORT
wait $KILLER
kill -TERM $NODE $HEAD; wait $NODE $HEAD
[ "$ONLY" = quick ] || {
kill_later "estilo batch .*/pool-killed" "spawn_main"
run pool-killed "$WORK/in/content/photo.jpg" -o "$WORK/pool-killed"
wait $KILLER
run local-1-process "$WORK/in/content" -o "$WORK/local1" --workers 1
}
for d in pool ray ray-killed pool-killed local1; do
  [ -f "$WORK/$d/batch-summary.json" ] && "$PY" -c "import json,sys; s=json.load(open(sys.argv[1])); print('[summary $d]', {k: s[k] for k in ('done','skipped','failed','elapsed_s','workers')}, 'workers used:', len({i['worker'] for i in s['items']}))" "$WORK/$d/batch-summary.json" >> "$LOG"
done
echo "== done $(date -u)" >> "$LOG"
