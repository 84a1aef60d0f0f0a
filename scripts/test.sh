#!/bin/sh
# Install what the tests need (Orthanc 1.10.1 and DCMTK from Debian, Python packages) and run the suite.
set -e
cd "$(dirname "$0")/.."
if ! command -v Orthanc >/dev/null 2>&1 || ! command -v storescu >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1 || [ ! -e /usr/share/orthanc/plugins/libOrthancDicomWeb.so ]; then
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -q || true
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends orthanc orthanc-dicomweb dcmtk chromium
fi
python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e '.[test]'
.venv/bin/ruff check src tests
exec .venv/bin/python -m pytest -q "$@"
