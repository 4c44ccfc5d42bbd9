#!/usr/bin/env bash
# optimlab's setup (run by ./optimlab and ./run-tests on first use; CI runs it on a clean clone).
#  1. a virtual environment in .venv
#  2. PyTorch 2.13.0 first (the CPU build on this machine's disk), so that the package's loose
#     range (torch>=2.4) installs nothing more
#  3. optimlab itself, editable, with the test tools
#  4. Debian's Chromium for the report's headless-browser test, when running as root with
#     apt-get and it is missing. Optional: if it cannot be installed the test is skipped and
#     says why. Set OPTIMLAB_NO_BROWSER=1 to skip this step.
# With --if-needed it does nothing when .venv was already set up from the same pyproject.toml
# and setup script (a stamp in .venv records their hash).
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=.venv/.optimlab-setup
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)"
if [ "${1:-}" = "--if-needed" ] && [ -x .venv/bin/optimlab ] && [ -f "$stamp" ] \
   && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "setting up optimlab in .venv (first use: about two minutes)"
if [ -e .venv ] && ! .venv/bin/pip --version >/dev/null 2>&1; then
  echo "the .venv here does not run (moved, or made by another Python): making it again"
  rm -rf .venv
fi
python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check torch==2.13.0
.venv/bin/pip install --quiet --disable-pip-version-check -e ".[dev]"
if [ -z "${OPTIMLAB_NO_BROWSER:-}" ] && ! command -v chromium >/dev/null 2>&1 \
   && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's chromium for the report's browser test (OPTIMLAB_NO_BROWSER=1 skips)"
  apt-get install -y -q chromium >/dev/null 2>&1 \
    || (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1) \
    || echo "chromium could not be installed: the browser test will be skipped"
fi
echo "$want" > "$stamp"
echo "optimlab is set up"
