"""Weights: sha256 verification, spandrel detection of community architectures, S3, our own safetensors."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from engines.errors import UnknownEngine, WeightsError
from engines.families.compact_sr import SR_X2_REAL
from engines.registry import Registry
from engines.session import load_model, open_engine
from engines.spec import Task
from engines.weights_io import load_builtin, load_external


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def community_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Randomly initialised community architectures saved as operators would ship them."""
    from spandrel.architectures.Compact import Compact as SRVGGNetCompact
    from spandrel.architectures.ESRGAN import ESRGAN as RRDBNet

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("community")
    compact = SRVGGNetCompact(num_in_ch=3, num_out_ch=3, num_feat=16, num_conv=4, upscale=2)
    rrdb = RRDBNet(in_nc=3, out_nc=3, num_filters=16, num_blocks=2, scale=4)
    denoise = SRVGGNetCompact(num_in_ch=3, num_out_ch=3, num_feat=16, num_conv=4, upscale=1)
    files = {
        "compact.pth": folder / "compact_x2.pth",
        "rrdb.safetensors": folder / "rrdb_x4.safetensors",
        "denoise.pth": folder / "compact_x1.pth",
    }
    # Real-ESRGAN ships its weights under "params_ema"; spandrel must unwrap that too.
    torch.save({"params_ema": compact.state_dict()}, files["compact.pth"])
    save_file({k: v.contiguous() for k, v in rrdb.state_dict().items()}, str(files["rrdb.safetensors"]))
    torch.save(denoise.state_dict(), files["denoise.pth"])
    return files


def test_spandrel_detects_compact_pth(community_files: dict[str, Path]) -> None:
    model = load_external(str(community_files["compact.pth"]))
    spec = model.spec
    assert (spec.architecture, spec.task, spec.scale) == ("Compact", Task.SUPER_RESOLUTION, 2)
    assert spec.tile_overlap >= 4 + 2  # num_conv + head/tail
    assert spec.weights.sha256 == _sha(community_files["compact.pth"]) == model.weights_sha256


def test_spandrel_detects_rrdbnet_safetensors(community_files: dict[str, Path]) -> None:
    spec = load_external(str(community_files["rrdb.safetensors"])).spec
    assert (spec.architecture, spec.task, spec.scale) == ("ESRGAN", Task.SUPER_RESOLUTION, 4)


def test_scale_one_restoration_is_a_denoise_engine(community_files: dict[str, Path], tmp_path: Path) -> None:
    with open_engine(str(community_files["denoise.pth"]), backend="torch", cache_dir=tmp_path) as engine:
        assert engine.spec.task is Task.DENOISE and engine.spec.scale == 1
        out = engine.process(np.random.default_rng(0).random((20, 30, 3), dtype=np.float32))
        assert out.shape == (20, 30, 3)


def test_community_model_runs_on_onnxruntime(community_files: dict[str, Path], tmp_path: Path) -> None:
    # Given an operator's Compact x2 model, when opened with auto on CPU, then ONNX Runtime runs it and
    # agrees with torch.
    image = np.random.default_rng(1).random((33, 41, 3), dtype=np.float32)
    path = str(community_files["compact.pth"])
    with open_engine(path, cache_dir=tmp_path, device="cpu") as ort_engine, \
            open_engine(path, backend="torch", cache_dir=tmp_path) as torch_engine:
        assert ort_engine.backend_name == "onnxruntime"
        diff = np.abs(ort_engine.process(image) - torch_engine.process(image)).max()
    assert diff <= 1e-4


def test_sha256_mismatch_raises_weights_error(community_files: dict[str, Path]) -> None:
    with pytest.raises(WeightsError, match="sha256 mismatch") as info:
        load_external(str(community_files["compact.pth"]), sha256="0" * 64)
    assert info.value.reason == "bad_weights" and not info.value.retryable


def test_matching_sha256_is_accepted(community_files: dict[str, Path]) -> None:
    path = community_files["compact.pth"]
    assert load_external(str(path), sha256=_sha(path).upper()).spec.scale == 2


def test_garbage_and_unknown_architectures_raise_weights_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"definitely not a checkpoint")
    with pytest.raises(WeightsError):
        load_external(str(junk))
    unknown = tmp_path / "unknown.safetensors"
    save_file({"foo.weight": torch.zeros(3, 3)}, str(unknown))
    with pytest.raises(WeightsError, match="does not recognise"):
        load_external(str(unknown))
    with pytest.raises(WeightsError):
        load_external(str(tmp_path / "missing.pth"))


def test_pickled_code_is_refused(tmp_path: Path) -> None:
    # A .pth that would run code when unpickled must be rejected by spandrel's allow-list unpickler.
    class Evil:
        def __reduce__(self):  # noqa: ANN204
            return (print, ("pwned",))

    path = tmp_path / "evil.pth"
    torch.save({"params": Evil()}, path)
    with pytest.raises(WeightsError):
        load_external(str(path))


def test_own_safetensors_format_loads_without_spandrel(make_random, tmp_path: Path) -> None:  # noqa: ANN001
    model = make_random(SR_X2_REAL)
    path = tmp_path / "mine.safetensors"
    meta = {"arch": "CompactSR", "arch_params": json.dumps(dict(model.spec.arch_params))}
    save_file({k: v.contiguous() for k, v in model.module.net.state_dict().items()}, str(path), metadata=meta)
    loaded = load_external(str(path))
    assert loaded.spec.architecture == "CompactSR" and loaded.spec.scale == 2
    assert loaded.spec.tile_overlap >= model.module.net.receptive_field


def test_builtin_without_pinned_sha_or_file_raises(tmp_path: Path) -> None:
    from dataclasses import replace

    from engines.spec import WeightsRef

    with pytest.raises(WeightsError, match="not shipped"):
        load_builtin(replace(SR_X2_REAL, weights=WeightsRef("nope.safetensors", None)))
    with pytest.raises(WeightsError, match="does not exist"):
        load_builtin(replace(SR_X2_REAL, weights=WeightsRef("nope.safetensors", "0" * 64)))


def test_builtin_metadata_must_match_spec(make_random, tmp_path: Path) -> None:  # noqa: ANN001
    from dataclasses import replace

    from engines.spec import WeightsRef

    model = make_random(SR_X2_REAL)
    path = tmp_path / "w.safetensors"
    meta = {"arch": "CompactSR", "arch_params": json.dumps({"scale": 4, "features": 48, "blocks": 8})}
    save_file({k: v.contiguous() for k, v in model.module.net.state_dict().items()}, str(path), metadata=meta)
    spec = replace(SR_X2_REAL, weights=WeightsRef(str(path), _sha(path)))
    with pytest.raises(WeightsError, match="metadata says"):
        load_builtin(spec)


def test_load_model_dispatch(community_files: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(UnknownEngine):
        load_model("not-an-engine", registry=Registry())
    # A registry entry may name a community architecture; the registry's spec (id, tiles) wins.
    from dataclasses import replace

    from engines.spec import WeightsRef

    base = load_external(str(community_files["compact.pth"])).spec
    spec = replace(base, id="ops-compact", tile_size=128,
                   weights=WeightsRef(str(community_files["compact.pth"]), base.weights.sha256))
    loaded = load_model("ops-compact", registry=Registry([spec]), cache_dir=tmp_path)
    assert loaded.spec.id == "ops-compact" and loaded.spec.tile_size == 128


def test_s3_weights_are_downloaded_verified_and_cached(community_files: dict[str, Path], tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    moto = pytest.importorskip("moto")
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("RETOUCH_S3_ENDPOINT_URL", raising=False)
    path = community_files["compact.pth"]
    with moto.mock_aws():
        boto3.client("s3").create_bucket(Bucket="models")
        boto3.client("s3").upload_file(str(path), "models", "ops/compact_x2.pth")
        uri = "s3://models/ops/compact_x2.pth"
        model = load_external(uri, sha256=_sha(path), cache_dir=tmp_path)
        assert model.spec.scale == 2 and model.spec.weights.file == uri
        cached = list((tmp_path / "weights").rglob("compact_x2.pth"))
        assert len(cached) == 1
        with pytest.raises(WeightsError, match="sha256 mismatch"):
            load_external(uri, sha256="1" * 64, cache_dir=tmp_path / "other")
        with pytest.raises(WeightsError, match="cannot download"):
            load_external("s3://models/ops/missing.pth", cache_dir=tmp_path)
