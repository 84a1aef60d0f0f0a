"""The in-flight journal: what a crash leaves unsettled, compaction, and the start-up sweep."""

from __future__ import annotations

from pathlib import Path

from donjon.storage import journal as journal_module
from donjon.storage.journal import InflightJournal, Leftover, sweep


def test_leftovers_are_the_unsettled_uuids(tmp_path: Path) -> None:
    j = InflightJournal(str(tmp_path / "j"))
    for u in ("a", "b", "c"):
        j.begin(u, 1, 1500)
    j.settle(["a", "c"])
    j.close()  # a crash: nothing else is written
    assert InflightJournal(str(tmp_path / "j")).leftovers() == [Leftover("b", 1, 1500)]


def test_journals_of_earlier_versions_still_read(tmp_path: Path) -> None:
    (tmp_path / "j").write_text("+old\n+new 3 20\n+odd x y\n")
    assert InflightJournal(str(tmp_path / "j")).leftovers() == [
        Leftover("old"), Leftover("new", 3, 20), Leftover("odd")]


def test_compaction_keeps_what_is_in_flight(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(journal_module, "_COMPACT_BYTES", 200)
    j = InflightJournal(str(tmp_path / "j"))
    j.begin("kept-in-flight", 1, 42)
    for i in range(100):
        j.begin(f"done-{i}", 1, 42)
        j.settle([f"done-{i}"])
    assert (tmp_path / "j").stat().st_size < 400  # compacted, not 100 pairs of lines
    assert j.leftovers() == [Leftover("kept-in-flight", 1, 42)]  # with what adoption needs


def test_sweep_removes_only_unreferenced_files(tmp_path: Path) -> None:
    j = InflightJournal(str(tmp_path / "j"))
    for u in ("orphan", "indexed"):
        j.begin(u)
    j.close()
    j = InflightJournal(str(tmp_path / "j"))
    removed: list[str] = []
    assert sweep(j, lambda uuids: {"indexed"} & set(uuids), removed.append) == (["orphan"], [])
    assert removed == ["orphan"] and j.leftovers() == []


def test_sweep_keeps_adopted_files_in_the_journal(tmp_path: Path) -> None:
    """A file to adopt stays announced until it is stored again: a second crash meanwhile finds it."""
    j = InflightJournal(str(tmp_path / "j"))
    j.begin("dicom", 1, 100)
    j.begin("header", 3, 10)
    j.close()
    j = InflightJournal(str(tmp_path / "j"))
    removed: list[str] = []
    assert sweep(j, lambda uuids: set(), removed.append, lambda e: e.content_type == 1) == (
        ["header"], [Leftover("dicom", 1, 100)])
    j.close()
    assert InflightJournal(str(tmp_path / "j")).leftovers() == [Leftover("dicom", 1, 100)]


def test_doomed_files_are_removed_unless_the_index_still_names_them(tmp_path: Path) -> None:
    """Files of a deletion committed without its fsync (a store's recycling): after a crash, removed
    when the deletion survived, kept when a power cut brought the rows back, never adopted."""
    j = InflightJournal(str(tmp_path / "j"))
    j.begin("recycled-then-crash", 1, 100)
    j.settle(["recycled-then-crash"])  # indexed long ago
    j.doom(["recycled-then-crash", "brought-back", "removed-in-time"])
    j.settle(["removed-in-time"], removed=True)  # its removal, once the deletion was durable
    j.close()
    j = InflightJournal(str(tmp_path / "j"))
    assert sorted(e.uuid for e in j.leftovers()) == ["brought-back", "recycled-then-crash"]
    assert all(e.doomed for e in j.leftovers())
    removed: list[str] = []
    adoptable: list[str] = []
    result = sweep(j, lambda uuids: {"brought-back"} & set(uuids), removed.append,
                   lambda e: adoptable.append(e.uuid) or True)
    assert result == (["recycled-then-crash"], [])
    assert removed == ["recycled-then-crash"] and adoptable == []
    j.close()
    assert InflightJournal(str(tmp_path / "j")).leftovers() == []


def test_doomed_files_survive_compaction(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(journal_module, "_COMPACT_BYTES", 200)
    j = InflightJournal(str(tmp_path / "j"))
    j.doom(["waits-for-the-flush"])
    for i in range(100):
        j.begin(f"done-{i}", 1, 42)
        j.settle([f"done-{i}"])
    assert j.leftovers() == [Leftover("waits-for-the-flush", doomed=True)]


def test_a_doomed_file_stays_until_removed_even_when_its_store_settles(tmp_path: Path) -> None:
    """A file deleted before its store's commit was made durable: the store's settlement (the index
    durable) must not erase the mark of its removal to come; only the removal does."""
    j = InflightJournal(str(tmp_path / "j"))
    j.begin("stored-then-deleted", 1, 100)
    j.doom(["stored-then-deleted"])
    j.settle(["stored-then-deleted"])  # the index sync's flush, for the store
    assert j.leftovers() == [Leftover("stored-then-deleted", doomed=True)]
    j.settle(["stored-then-deleted"], removed=True)
    assert j.leftovers() == []
