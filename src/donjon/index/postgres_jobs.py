"""The `jobs` table of the PostgreSQL index: one row per saved job, owned by one process at a time.

The owner writes the row and renews `lease_until`; a row whose lease has run out belongs to a process
that stopped (killed, crashed, or stopped cleanly and released it), and any other process may take it.
Times are the database's (`now()`), so the clocks of the machines do not matter. Every update is
conditional on the owner, so a process that lost a job (presumed dead, then came back) cannot
overwrite the row of the process that took it over.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .postgres import PostgresIndex


class PgJobStore:
    def __init__(self, index: PostgresIndex):
        self.pool = index.pool

    def _run(self, query: str, params: tuple[Any, ...] = ()) -> list[Any]:
        with self.pool.connection() as conn:
            cur = conn.execute(query, params)  # type: ignore[arg-type]
            return cur.fetchall() if cur.description else []

    def put(self, job_id: str, owner: str, state: str, completed: bool, body: str, lease: int) -> bool:
        """Insert or update a job of `owner`; False if another process owns it now."""
        rows = self._run(
            "INSERT INTO jobs (id, owner, lease_until, state, completed, body, updated) "
            "VALUES (%s, %s, now() + make_interval(secs => %s), %s, %s, %s, now()) "
            "ON CONFLICT (id) DO UPDATE SET lease_until = excluded.lease_until, state = excluded.state, "
            "completed = excluded.completed, body = excluded.body, updated = now() "
            "WHERE jobs.owner = excluded.owner RETURNING id", (job_id, owner, lease, state, completed, body))
        return bool(rows)

    def renew(self, owner: str, lease: int) -> None:
        self._run("UPDATE jobs SET lease_until = now() + make_interval(secs => %s) WHERE owner = %s",
                  (lease, owner))

    def release(self, owner: str) -> None:
        """A clean stop: the unfinished jobs of `owner` may be taken over at once."""
        self._run("UPDATE jobs SET lease_until = now() - interval '1 second' WHERE owner = %s", (owner,))

    def claim_expired(self, owner: str, lease: int, limit: int = 20) -> list[tuple[str, str]]:
        """Take unfinished jobs whose owner stopped renewing them: (id, body) of each."""
        return [(r[0], r[1]) for r in self._run(
            "UPDATE jobs SET owner = %s, lease_until = now() + make_interval(secs => %s), updated = now() "
            "WHERE id IN (SELECT id FROM jobs WHERE NOT completed AND lease_until < now() ORDER BY updated "
            "LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING id, body", (owner, lease, limit))]

    def delete(self, job_id: str, owner: str) -> None:
        self._run("DELETE FROM jobs WHERE id = %s AND owner = %s", (job_id, owner))

    def get(self, job_id: str) -> str | None:
        rows = self._run("SELECT body FROM jobs WHERE id = %s", (job_id,))
        return rows[0][0] if rows else None

    def ids(self) -> list[str]:
        return [r[0] for r in self._run("SELECT id FROM jobs")]

    def bodies(self) -> list[tuple[str, str]]:
        return [(r[0], r[1]) for r in self._run("SELECT id, body FROM jobs")]

    def trim_completed(self, keep: int) -> None:
        """Completed jobs of stopped processes beyond the `keep` most recent ones leave the history."""
        self._run("DELETE FROM jobs WHERE completed AND lease_until < now() AND id NOT IN ("
                  "SELECT id FROM jobs WHERE completed ORDER BY updated DESC LIMIT %s)", (keep,))
