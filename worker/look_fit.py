"""`retouch look fit REF... -o look.json`: a shop's look from its own reference photos.

Each reference is made neutral by the tone engine; the look is what leads from those neutral versions
back to the references (`worker.pipeline.looks.fit_look`). Photos are read at most 512 px on the long
side: a look is global, and that keeps fitting a hundred references to seconds.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

FIT_SIDE = 512


def _read(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        im.thumbnail((FIT_SIDE, FIT_SIDE), Image.Resampling.LANCZOS)
        return np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0


def fit_from_files(references: list[Path], output: Path, *, name: str, model: str | None = None) -> int:
    from engines.registry import builtin_registry
    from engines.session import open_engine
    from worker.pipeline.looks import fit_look

    missing = [str(p) for p in references if not p.is_file()]
    if missing:
        print(f"retouch look fit: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    pairs = []
    with open_engine(model or builtin_registry().default_for("tone").id) as engine:
        for path in references:
            try:
                styled = _read(path)
            except OSError as error:
                print(f"retouch look fit: {path}: not a readable image ({error})", file=sys.stderr)
                return 2
            pairs.append((engine.process(styled), styled))
    look = fit_look(pairs, name)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(look.to_json() + "\n")
    print(f"wrote {output}: look {name!r} from {len(pairs)} photos, saturation x{look.saturation:.2f}")
    return 0
