"""A throw-away PostgreSQL cluster for the tests: `initdb` + `pg_ctl` in a temporary folder, free port.

Debian's server binaries live in /usr/lib/postgresql/<version>/bin. PostgreSQL refuses to run as root,
so when the tests run as root the cluster is created and started as the `postgres` user (or `nobody`).
`DONJON_TEST_INDEX=postgresql` makes `start_donjon` give every server a database of its own here.
"""

from __future__ import annotations

import atexit
import glob
import hashlib
import os
import pwd
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

from tests.support.servers import free_port

USE_POSTGRES = os.environ.get("DONJON_TEST_INDEX", "").lower() in ("postgresql", "postgres", "pg")


def pg_bin_dir() -> Path | None:
    """The folder of `initdb`/`pg_ctl`: Debian's newest version, else whatever is on the PATH."""
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]),
                            reverse=True):
        if os.path.exists(os.path.join(candidate, "initdb")):
            return Path(candidate)
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _unprivileged_user() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root and no unprivileged user (postgres, nobody) to run PostgreSQL")


class PostgresCluster:
    """One `postgres` server process; databases are created on demand, `stop()` removes everything."""

    def __init__(self) -> None:
        bindir = pg_bin_dir()
        if bindir is None:
            raise RuntimeError("PostgreSQL server binaries are missing (apt-get install postgresql)")
        self.bindir = bindir
        self.port = free_port()
        self.host = "127.0.0.1"
        self.user = "donjon"
        self.password = "donjon-test-secret"
        self.root = Path(tempfile.mkdtemp(prefix="donjon-pg-"))
        self.data = self.root / "data"
        self._runner = _unprivileged_user()
        self._lock = threading.Lock()
        self._created: set[str] = set()
        self._start()

    def _run(self, args: list[str], **kw: Any) -> subprocess.CompletedProcess[bytes]:
        runner = self._runner
        preexec = None
        if runner is not None:
            uid, gid = runner.pw_uid, runner.pw_gid

            def preexec() -> None:
                os.setgid(gid)
                os.setuid(uid)
        env = {**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
        return subprocess.run(args, preexec_fn=preexec, env=env, capture_output=True, check=False,
                              cwd=str(self.root), **kw)

    def _start(self) -> None:
        if self._runner is not None:
            os.chown(self.root, self._runner.pw_uid, self._runner.pw_gid)
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self._runner is not None:
            os.chown(pwfile, self._runner.pw_uid, self._runner.pw_gid)
        r = self._run([str(self.bindir / "initdb"), "-D", str(self.data), "-U", self.user, "-A", "scram-sha-256",
                       f"--pwfile={pwfile}", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"])
        if r.returncode != 0:
            raise RuntimeError(f"initdb failed: {r.stderr.decode(errors='replace')}")
        conf = self.data / "postgresql.conf"
        base_conf = conf.read_text()
        for attempt in range(5):
            settings = [
                f"port = {self.port}", "listen_addresses = '127.0.0.1'", f"unix_socket_directories = '{self.root}'",
                "max_connections = 300", "shared_buffers = 128MB", "fsync = on", "synchronous_commit = on",
                "log_min_messages = warning", "logging_collector = off",
            ]
            conf.write_text(base_conf + "\n".join(settings) + "\n")
            log_path = self.root / "server.log"
            r = self._run([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(log_path),
                           "-w", "-t", "60", "start"])
            if r.returncode == 0:
                return
            log = log_path.read_text(errors="replace") if log_path.exists() else ""
            if "Address already in use" in log and attempt < 4:
                # the free port was taken meanwhile (parallel test workers start servers too): another
                self.port = free_port()
                log_path.unlink()
                continue
            raise RuntimeError(f"pg_ctl start failed: {r.stderr.decode(errors='replace')}\n{log}")

    # -- databases -----------------------------------------------------------------------------------
    def uri(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{database}"

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.uri(), autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def create_database(self, name: str) -> str:
        with self._lock:
            if name not in self._created:
                import psycopg

                with psycopg.connect(self.uri(), autocommit=True) as conn:
                    exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
                    if not exists:
                        conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
                self._created.add(name)
        return name

    def drop_database(self, name: str) -> None:
        with self._lock:
            self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            self._created.discard(name)

    def section(self, database: str, **extra: Any) -> dict[str, Any]:
        """A `PostgreSQL` configuration section for a database of this cluster."""
        return {"EnableIndex": True, "Host": self.host, "Port": self.port, "Database": database,
                "Username": self.user, "Password": self.password, **extra}

    def stop(self) -> None:
        if self.data.exists():
            self._run([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"])
        shutil.rmtree(self.root, ignore_errors=True)


_shared: PostgresCluster | None = None
_shared_lock = threading.Lock()


def shared_cluster() -> PostgresCluster:
    """The cluster of this test session, started on first use and stopped at exit."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = PostgresCluster()
            atexit.register(_shared.stop)
        return _shared


def database_for(workdir: Path) -> str:
    """One database per server work folder: a restarted server finds its index again."""
    return "donjon_" + hashlib.sha1(str(workdir.resolve()).encode()).hexdigest()[:16]


def postgres_section_for(workdir: Path, **extra: Any) -> dict[str, Any]:
    cluster = shared_cluster()
    return cluster.section(cluster.create_database(database_for(workdir)), **extra)
