import pytest

from donjon.core.matching import normalize, parse_constraint
from donjon.errors import OrthancError

PN = 0x00100010
DA = 0x00080020
UI = 0x0020000D


def test_equal_is_case_insensitive_by_default():
    c = parse_constraint(PN, "knee", False)
    assert c.matches("KNEE") and c.matches("Knee") and not c.matches("KNEES")
    assert not parse_constraint(PN, "knee", True).matches("KNEE")


def test_wildcards():
    c = parse_constraint(PN, "K*S?", False)
    assert c.matches("KNEES1") and c.matches("KS1") and not c.matches("KNEES")
    assert parse_constraint(PN, "*", False).matches("")
    assert not parse_constraint(PN, "*", False).matches(None)
    assert parse_constraint(PN, "a[b]*", False).matches("A[B]C")


def test_accents_are_kept_like_orthanc():
    assert normalize("Test-é") == "TEST-É"
    assert parse_constraint(PN, "test-é*", False).matches("Test-éüäöò")
    assert not parse_constraint(PN, "TEST-E*", False).matches("Test-éüäöò")


def test_ranges_and_lists():
    c = parse_constraint(DA, "20000101-20101231", False)
    assert c.matches("20080822") and not c.matches("19991231")
    assert parse_constraint(DA, "-20000101", False).matches("19000101")
    assert parse_constraint(DA, "20000101-", False).matches("20260101")
    c = parse_constraint(PN, "A\\B", False)
    assert c.matches("a") and c.matches("B") and not c.matches("C")


def test_wildcards_refused_on_other_vrs():
    for tag, value in ((DA, "2006*"), (UI, "1.2*"), (UI, "*")):
        with pytest.raises(OrthancError) as e:
            parse_constraint(tag, value, False)
        assert e.value.code == 3


def test_empty_value_is_no_constraint():
    assert parse_constraint(PN, "", False) is None


def test_only_the_plain_case_insensitive_tests_are_settled_by_the_index() -> None:
    from donjon.core.matching import Constraint, parse_constraint
    from donjon.dicomweb.qido import FuzzyConstraint

    assert parse_constraint(0x00100010, "DOE*", False).settled_by_index()
    assert parse_constraint(0x00080020, "20200101-20201231", False).settled_by_index()
    assert parse_constraint(0x00100020, "A\\B", False).settled_by_index()
    assert not parse_constraint(0x00100010, "Doe*", True).settled_by_index()  # narrowed on upper case only
    assert not parse_constraint(0x00100010, "DO\x00E*", False).settled_by_index()  # PostgreSQL drops NUL
    assert not FuzzyConstraint(0x00100010, "wildcard", value="DOE").settled_by_index()
    assert not Constraint(0x00100010, "other").settled_by_index()
