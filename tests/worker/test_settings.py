"""Settings are read at start-up, and every bad variable is reported at once."""

import pytest

from worker.settings import SettingsError, load_settings


def test_defaults_load_with_nothing_set(monkeypatch):
    for name in ("RETOUCH_BROKER_URL", "RETOUCH_OUTPUT_PREFIX", "RETOUCH_MAX_SCALE"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.storage.output_prefix == "enhanced/"
    assert settings.broker.resolved_broker_url().startswith("sqla+sqlite:///")


def test_every_error_is_reported_together(monkeypatch):
    monkeypatch.setenv("RETOUCH_OUTPUT_PREFIX", "enhanced")  # not a folder: outputs would re-trigger us
    monkeypatch.setenv("RETOUCH_MAX_SCALE", "3")
    monkeypatch.setenv("RETOUCH_METRICS_PORT", "70000")
    monkeypatch.setenv("RETOUCH_BUCKET_POLICIES", '{"square": {"canvas_aspect": "wide", "colour": "red"}}')
    with pytest.raises(SettingsError) as error:
        load_settings()
    message = str(error.value)
    for name in ("RETOUCH_OUTPUT_PREFIX", "RETOUCH_MAX_SCALE", "RETOUCH_METRICS_PORT",
                 "RETOUCH_BUCKET_POLICIES[square].canvas_aspect", "unknown fields ['colour']"):
        assert name in message


def test_bucket_policy_overrides_only_its_bucket(monkeypatch):
    monkeypatch.setenv("RETOUCH_BUCKET_POLICIES", '{"square": {"canvas_aspect": "1:1", "target_short_side": "512"}}')
    settings = load_settings()
    assert settings.policy_for("square").canvas_aspect == "1:1"
    assert settings.policy_for("square").target_short_side == 512
    assert settings.policy_for("other").canvas_aspect is None


def test_readme_documents_exactly_the_settings():
    import re
    from pathlib import Path

    from tests.infra._cli import known_variables

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    documented = set(re.findall(r"^\| `(RETOUCH_[A-Z0-9_]+)` \|", readme, flags=re.M))
    declared = known_variables()
    assert documented == declared, f"undocumented: {declared - documented}, not settings: {documented - declared}"
