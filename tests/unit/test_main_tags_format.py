"""core/views.format_main_tags: Orthanc's three shapes of main tags, memoised by the stored blob."""

from __future__ import annotations

import orjson

from donjon.core import views
from donjon.core.views import TagFormat, format_main_tags

BLOB = orjson.dumps({"0010,0010": "Doe^John", "0010,0020": "P1"})


def test_the_three_formats() -> None:
    assert format_main_tags(BLOB, TagFormat.HUMAN) == {"PatientName": "Doe^John", "PatientID": "P1"}
    assert format_main_tags(BLOB, TagFormat.SHORT) == {"0010,0010": "Doe^John", "0010,0020": "P1"}
    assert format_main_tags(BLOB, TagFormat.FULL)["0010,0010"] == {"Name": "PatientName", "Type": "String",
                                                                   "Value": "Doe^John"}
    assert format_main_tags(None, TagFormat.HUMAN) == {} and format_main_tags(b"", TagFormat.SHORT) == {}


def test_memoised_by_content_and_bounded() -> None:
    first = format_main_tags(bytes(BLOB), TagFormat.HUMAN)
    assert format_main_tags(bytes(BLOB), TagFormat.HUMAN) is first  # an equal blob read again: no new work
    other = orjson.dumps({"0010,0010": "Roe^Jane"})
    assert format_main_tags(other, TagFormat.HUMAN) == {"PatientName": "Roe^Jane"}  # content, not identity
    for i in range(views._FORMATTED_MAX + 10):
        format_main_tags(orjson.dumps({"0020,0010": str(i)}), TagFormat.SHORT)
    assert len(views._FORMATTED) <= views._FORMATTED_MAX
    assert format_main_tags(BLOB, TagFormat.HUMAN) == {"PatientName": "Doe^John", "PatientID": "P1"}
