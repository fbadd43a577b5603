#!/usr/bin/env bash
# One-time, idempotent set-up: Debian packages (when root) and .venv with the pinned toolchain.
# Quick when nothing changed: a stamp records the hash of the files that define the install.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_PACKAGES=(mesa-vulkan-drivers qemu-user-static adb spirv-tools)  # spirv-tools: spirv-val (tests)
missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "setup: not root, skipping Debian packages ${missing[*]} (Vulkan/Android checks will be skipped)" >&2
  fi
fi

PY=${PYTHON:-python3}
stamp=.venv/.pconv-setup-stamp
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch first, alone and pinned: the CPU build lies on local disk; nothing may pull another.
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[test]"
echo "$want" > "$stamp"
echo "setup: .venv ready"
