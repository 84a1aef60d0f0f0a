#!/bin/sh
# Install what the tests need (Orthanc 1.10.1, DCMTK and PostgreSQL from Debian, Python packages) and run the suite.
set -e
cd "$(dirname "$0")/.."
if ! command -v Orthanc >/dev/null 2>&1 || ! command -v storescu >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1 || [ ! -e /usr/share/orthanc/plugins/libOrthancDicomWeb.so ] || ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -q || true
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends orthanc orthanc-dicomweb dcmtk chromium postgresql
fi
python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e '.[test]'
# An editable install writes no bytecode, and PYTHONDONTWRITEBYTECODE (set on some machines) keeps
# Python from caching it: compile once, as a regular install does, rather than in every server started.
.venv/bin/python -m compileall -q src >/dev/null
.venv/bin/ruff check src tests
if [ $# -gt 0 ]; then exec .venv/bin/python -m pytest -q "$@"; fi
# Test files run in parallel (pytest-xdist), a file at a time per worker: its module-scoped servers
# stay with it. Every server a test starts takes free ports and its own folders.
PARALLEL="-n ${DONJON_TEST_WORKERS:-2} --dist loadfile"
.venv/bin/python -m pytest -q $PARALLEL
# The storage-heavy API tests again on S3 object storage (a local moto server, a bucket per server;
# docs/storage.md). About 20 s here.
DONJON_TEST_STORAGE=s3 .venv/bin/python -m pytest -q $PARALLEL tests/api/test_store.py tests/api/test_attachments.py \
    tests/api/test_recycling.py tests/api/test_delete_and_changes.py
# The whole API suite again with the PostgreSQL index (a throw-away cluster, a database per server;
# docs/postgresql.md), and the find differential tests. About 2 minutes here (~460 tests).
export DONJON_TEST_INDEX=postgresql
exec .venv/bin/python -m pytest -q $PARALLEL tests/api tests/diff/test_find_diff.py
