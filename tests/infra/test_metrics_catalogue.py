"""The exposition the code really produces passes promtool's lint, and METRICS.md documents all of it."""

from __future__ import annotations

import re
import subprocess

from tests.infra._exposition import exported_series_names, family_names, full_exposition
from tests.infra.conftest import INFRA, tool


def test_exposition_passes_promtool_check_metrics() -> None:
    # Given every metric exercised once with realistic labels, plus the GPU collector on a fake NVML
    text = full_exposition()
    # When promtool lints it (naming, units, counter suffixes, HELP)
    result = subprocess.run([tool("promtool"), "check", "metrics"], input=text, capture_output=True, timeout=60)
    # Then it finds nothing to say
    assert result.returncode == 0, (result.stdout + result.stderr).decode()
    assert not (result.stdout + result.stderr).strip(), (result.stdout + result.stderr).decode()


def test_exposition_contains_every_metric() -> None:
    names = family_names(full_exposition().decode())
    exported = exported_series_names() - {"up"}
    bases = {re.sub(r"_(total|bucket|sum|count)$", "", name) for name in exported}
    # prometheus_client writes a counter's TYPE line without _total, a histogram's without suffixes.
    assert bases <= names | {name.removesuffix("_total") for name in names}


def test_catalogue_documents_exactly_what_is_exported() -> None:
    catalogue = (INFRA / "METRICS.md").read_text()
    documented = set(re.findall(r"^\| `(retouch_[a-z_]+)`", catalogue, flags=re.M))
    exported = exported_series_names() - {"up"}
    # The catalogue names series as queried: counters with _total, histograms by their base name.
    queried = {re.sub(r"_(bucket|sum|count)$", "", name) for name in exported}
    assert documented == queried, f"missing: {queried - documented}, stale: {documented - queried}"
