"""`auto` on a CPU in fp32 times ONNX Runtime and torch once per engine and machine and keeps the faster."""

from __future__ import annotations

import json

import pytest

from engines import backend_probe, session
from engines.session import Engine, load_model


def _missing() -> set[str]:
    from engines.backends.openvino_backend import openvino_available

    return set() if openvino_available() else {"openvino"}


@pytest.fixture
def probing(monkeypatch):
    monkeypatch.setattr(session, "_probe_enabled", lambda: True)


def test_the_faster_backend_is_timed_once_and_remembered(probing, tmp_path, monkeypatch) -> None:
    # Given a fresh cache, When an engine opens with auto in fp32, Then both backends are timed for real,
    # the faster one runs, and the verdict is kept for the next process on this CPU.
    model = load_model("retouch-sr-x2-real")
    engine = Engine(model, backend="auto", precision="fp32", cache_dir=tmp_path, warm_up=False)
    (verdict_file,) = (tmp_path / "backend-probe").glob("*.json")
    verdict = json.loads(verdict_file.read_text())
    assert set(verdict["seconds"]) == set(backend_probe.CPU_BACKENDS["fp32"]) - _missing()
    assert all(s > 0 for s in verdict["seconds"].values())
    assert engine.backend_name == verdict["order"][0] == min(verdict["seconds"], key=verdict["seconds"].get)

    def no_timing(*_args):
        raise AssertionError("timed again although a verdict was cached")

    monkeypatch.setattr(backend_probe, "_one_run", no_timing)
    again = Engine(model, backend="auto", precision="fp32", cache_dir=tmp_path, warm_up=False)
    assert again.backend_name == engine.backend_name


@pytest.mark.parametrize("faster", ["torch", "onnxruntime"])
def test_auto_follows_the_measurement(faster: str, probing, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(backend_probe, "_one_run", lambda backend, *_: 0.01 if backend.name == faster else 0.05)
    engine = Engine(load_model("retouch-sr-x2-real"), backend="auto", precision="fp32", cache_dir=tmp_path,
                    warm_up=False)
    assert engine.backend_name == faster


def test_another_cpu_or_runtime_times_afresh(probing, tmp_path, monkeypatch) -> None:
    model = load_model("retouch-sr-x2-real")
    monkeypatch.setattr(backend_probe, "_one_run", lambda backend, *_: 0.01 if backend.name == "torch" else 0.05)
    Engine(model, backend="auto", precision="fp32", cache_dir=tmp_path, warm_up=False)
    monkeypatch.setattr(backend_probe, "cpu_signature", lambda: "another CPU")
    monkeypatch.setattr(backend_probe, "_one_run", lambda backend, *_: 0.05 if backend.name == "torch" else 0.01)
    assert Engine(model, backend="auto", precision="fp32", cache_dir=tmp_path, warm_up=False).backend_name == (
        "onnxruntime")
    assert len(list((tmp_path / "backend-probe").glob("*.json"))) == 2


def test_explicit_backends_and_the_switch_skip_the_probe(tmp_path, monkeypatch) -> None:
    def no_probe(*_args):
        raise AssertionError("probed")

    monkeypatch.setattr(backend_probe, "fastest_cpu_backends", no_probe)
    model = load_model("retouch-sr-x2-real")
    assert Engine(model, backend="auto", precision="fp32", cache_dir=tmp_path, warm_up=False).backend_name == (
        "onnxruntime")  # RETOUCH_BACKEND_PROBE=false (tests/conftest.py): the fixed order
    monkeypatch.setattr(session, "_probe_enabled", lambda: True)
    assert Engine(model, backend="torch", precision="fp32", cache_dir=tmp_path, warm_up=False).backend_name == "torch"


def test_bf16_is_timed_only_on_the_backends_that_run_it(probing, tmp_path, monkeypatch) -> None:
    timed: list[str] = []

    def seconds(backend, *_):
        timed.append(backend.name)
        return 0.01

    monkeypatch.setattr(backend_probe, "_one_run", seconds)
    engine = Engine(load_model("retouch-sr-x2-real"), backend="auto", precision="bf16", cache_dir=tmp_path,
                    warm_up=False)
    assert set(timed) == {"torch", "openvino"} - _missing() and engine.precision == "bf16"
