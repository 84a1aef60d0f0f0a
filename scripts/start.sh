#!/bin/sh
# Install Donjon in ./.venv and start it on its embedded defaults
# (SQLite index + storage in ./OrthancStorage, HTTP 8042, AET ORTHANC); extra arguments go to donjon.
set -e
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check '.[jpeg]'
exec .venv/bin/donjon "$@"
