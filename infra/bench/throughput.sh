#!/usr/bin/env bash
# Worker throughput on this machine's CPU: `retouch enhance` (the worker's pipeline, in-process) over a
# folder of listing photos for each split of the cores into processes x threads, warm (each process's
# first photo, when its engines load, is left out), and the pipeline's overhead (all steps but the
# engines) as a share of engine time.
#
#   infra/bench/throughput.sh PHOTO_DIR [extra retouch enhance flags]
#
# Prints one line per split: processes, threads, warm photos, wall seconds of the warm photos (the slowest
# process), images/s, overhead share. RETOUCH_* settings pass through (e.g. RETOUCH_PRECISION=fp32).
set -euo pipefail
photos_dir=${1:?folder of listing photos}
shift
python=${PYTHON:-python}
cores=$(nproc)
mapfile -t photos < <(find "$photos_dir" -maxdepth 1 -type f \( -iname '*.jpg' -o -iname '*.jpeg' -o -iname '*.png' -o -iname '*.webp' \) | sort)
[ "${#photos[@]}" -ge 2 ] || { echo "need at least 2 photos in $photos_dir" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '%-10s %-8s %-6s %-10s %-10s %s\n' processes threads photos wall_s images/s overhead
procs=1
while [ "$procs" -le "$cores" ]; do
  threads=$((cores / procs))
  run="$work/p$procs"
  for ((p = 0; p < procs; p++)); do
    group=()
    for ((i = p; i < ${#photos[@]}; i += procs)); do group+=("${photos[$i]}"); done
    # Each process's first photo loads its engines; it is left out of the figures (skip_first).
    OMP_NUM_THREADS=$threads RETOUCH_ORT_THREADS=$threads "$python" -m worker.cli enhance \
      "${group[@]}" -o "$run/$p" "$@" > "$run.$p.log" 2>&1 &
  done
  wait
  "$python" - "$run" "$procs" "$threads" <<'PY'
import sys
from pathlib import Path
from worker.overhead import read_costs, summary
run, procs, threads = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
per_process = [read_costs(d, skip_first=True) for d in sorted(run.iterdir()) if d.is_dir()]
warm = [c for costs in per_process for c in costs]
wall = max(sum(c.seconds for c in costs) for costs in per_process)
if not warm:
    sys.exit(f"{procs} processes: no warm photos (give at least two photos per process)")
share = summary(warm)["overhead_share_of_engines"]
print(f"{procs:<10} {threads:<8} {len(warm):<6} {wall:<10.2f} {len(warm) / wall:<10.3f} {100 * share:.1f} % of engines")
PY
  procs=$((procs * 2))
done
