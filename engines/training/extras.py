"""Training-only dependencies: in the `[train]` extra (`pip install -e ".[train]"`), imported only here.

The worker's wheel and CPU image need none of them; a training command that lacks one says which extra
to install instead of failing on an import at start-up.
"""

from __future__ import annotations

import importlib
from types import ModuleType


class MissingTrainingDependency(ImportError):
    """A training or evaluation command needs a package of the `[train]` extra."""


def require(module: str, package: str | None = None) -> ModuleType:
    """Import `module` for a training command, or explain how to get it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingTrainingDependency(
            f"this command needs {package or module} (training extra): pip install -e '.[train]'") from error


def opencv() -> ModuleType:
    """OpenCV: stroke masks for inpainting training, Telea / Navier-Stokes baselines in `retouch eval`."""
    cv2 = require("cv2", "opencv-python-headless")
    cv2.setNumThreads(1)  # its thread pool only adds contention on the small CPUs this runs on
    return cv2
