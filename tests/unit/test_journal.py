"""The in-flight journal: what a crash leaves unsettled, compaction, and the start-up sweep."""

from __future__ import annotations

from pathlib import Path

from donjon.storage import journal as journal_module
from donjon.storage.journal import InflightJournal, sweep


def test_leftovers_are_the_unsettled_uuids(tmp_path: Path) -> None:
    j = InflightJournal(str(tmp_path / "j"))
    for u in ("a", "b", "c"):
        j.begin(u)
    j.settle(["a", "c"])
    j.close()  # a crash: nothing else is written
    assert InflightJournal(str(tmp_path / "j")).leftovers() == ["b"]


def test_compaction_keeps_what_is_in_flight(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(journal_module, "_COMPACT_BYTES", 200)
    j = InflightJournal(str(tmp_path / "j"))
    j.begin("kept-in-flight")
    for i in range(100):
        j.begin(f"done-{i}")
        j.settle([f"done-{i}"])
    assert (tmp_path / "j").stat().st_size < 400  # compacted, not 100 pairs of lines
    assert j.leftovers() == ["kept-in-flight"]


def test_sweep_removes_only_unreferenced_files(tmp_path: Path) -> None:
    j = InflightJournal(str(tmp_path / "j"))
    for u in ("orphan", "indexed"):
        j.begin(u)
    j.close()
    j = InflightJournal(str(tmp_path / "j"))
    removed: list[str] = []
    assert sweep(j, lambda uuids: {"indexed"} & set(uuids), removed.append) == ["orphan"]
    assert removed == ["orphan"] and j.leftovers() == []
