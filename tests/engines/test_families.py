"""Model families: the registry is built from `FAMILIES`; a file of our format loaded by path runs as its
family says (inpainting included); the worker names no model."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import numpy as np
import pytest

from engines.families import FAMILIES, architectures, family_for_architecture
from engines.registry import builtin_registry
from engines.spec import Task
from engines.weights_io import WEIGHTS_DIR

ROOT = Path(__file__).resolve().parents[2]


def test_the_registry_is_every_familys_specs_and_defaults():
    registry = builtin_registry()
    assert [spec.id for spec in registry] == [spec.id for family in FAMILIES for spec in family.specs]
    for family in FAMILIES:
        assert all(spec.task is family.task and spec.architecture == family.architecture for spec in family.specs)
        for (task, scale), model_id in family.defaults.items():
            assert registry.default_for(task, scale).id == model_id
    assert set(architectures()) == {family.architecture for family in FAMILIES}


@pytest.mark.parametrize("model_id", [spec.id for spec in builtin_registry()])
def test_each_builtin_loaded_by_path_runs_as_its_family_says(model_id, tmp_path):
    from engines.session import open_engine

    # Given a built-in's file copied elsewhere, as an operator points RETOUCH_*_MODEL at a path
    path = tmp_path / f"my-{model_id}.safetensors"
    shutil.copyfile(WEIGHTS_DIR / f"{model_id}.safetensors", path)
    builtin = builtin_registry().get(model_id)
    rng = np.random.default_rng(0)
    image = rng.uniform(0.2, 0.8, (72, 80, 3)).astype(np.float32)
    with open_engine(str(path), backend="torch", device="cpu") as engine:
        # Then its task, scale and size rules come from the family, never guessed from the scale
        spec = engine.spec
        assert (spec.task, spec.scale, spec.size_multiple, spec.min_size) == (
            builtin.task, builtin.scale, builtin.size_multiple, builtin.min_size)
        assert family_for_architecture(spec.architecture).task is builtin.task
        if spec.task is Task.INPAINT:
            # (RETOUCH_INPAINT_MODEL=/path/retouch-inpaint.safetensors used to fail every task with a TypeError)
            mask = np.zeros(image.shape[:2], np.float32)
            mask[20:40, 30:50] = 1
            out = engine.fill(image, mask)
            assert out.shape == image.shape and np.array_equal(out[mask == 0], image[mask == 0])
            assert np.abs(out[mask == 1] - image[mask == 1]).mean() > 0.01  # the hole was generated
        elif spec.task is Task.MATTING:
            # A matting engine returns the photo with the product's matte as its alpha
            out = engine.process(image)
            assert out.shape == (72, 80, 4) and np.array_equal(out[..., :3], image)
            with open_engine(model_id, backend="torch", device="cpu") as same:
                np.testing.assert_allclose(out, same.process(image), atol=1e-6)
        else:
            out = engine.process(image)
            assert out.shape == (72 * spec.scale, 80 * spec.scale, 3)
            with open_engine(model_id, backend="torch", device="cpu") as same:
                np.testing.assert_allclose(out, same.process(image), atol=1e-6)


def _string_constants(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text())
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)]


def test_worker_names_no_model():
    ids = {spec.id for spec in builtin_registry()}
    # The one exception is not a model: the S3 metadata key sellers set rectangles with
    # (x-amz-meta-retouch-inpaint), which happens to share the inpainter's name.
    allowed = {("worker/pipeline/masks.py", "retouch-inpaint")}
    found = [f"{path.relative_to(ROOT)}:{line}: {value}" for path in sorted((ROOT / "worker").rglob("*.py"))
             for line, value in _string_constants(path)
             if value in ids and (str(path.relative_to(ROOT)), value) not in allowed]
    assert not found, "model ids in worker/ (ask engines.registry for defaults):\n" + "\n".join(found)
