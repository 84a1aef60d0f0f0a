#!/usr/bin/env python3
"""Generate `src/donjon/dicom/dcmtk_names.py`: where DCMTK's data dictionary differs from pydicom's.

Orthanc names tags (`"Name"` in `/tags`, the keys of `?simplify`) and reads implicit-VR files with
DCMTK's dictionary: `dicom.dic` (public tags, including DICONDE/DICOS ones and repeating groups) and
`private.dic` (private tags, keyed by private creator), both loaded by Orthanc at start-up
(`LoadPrivateDictionary` is true by default). Donjon uses pydicom's dictionary for speed and only
keeps the differences, so the generated module stays small:

* `NAMES`: public tag -> DCMTK name, where it differs from pydicom's keyword (e.g. `RETIRED_…`);
* `VRS`: public tag -> DCMTK VR, where it differs from pydicom's (e.g. `xs` for "US or SS");
* `NOT_IN_DCMTK`: public tags pydicom knows but DCMTK does not (DCMTK says "Unknown Tag & Data");
* `REPEATING`: the range entries (overlays, curves, group lengths, private creators...), in the
  order DCMTK searches them;
* `PRIVATE`: (group, creator, element) -> (VR, name) for `private.dic`; `element` is the low byte
  when the entry applies to any block (`(gggg,"CREATOR",ee)`), else the full element number;
* `PRIVATE_REPEATING`: private entries whose group is a range.

Usage: python tools/gen_dcmtk_names.py [--dicom-dic PATH] [--private-dic PATH] [--output PATH]
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from pydicom._dicom_dict import DicomDictionary

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DIR = Path("/usr/share/libdcmtk17")
OUTPUT = ROOT / "src" / "donjon" / "dicom" / "dcmtk_names.py"

# DCMTK's internal VRs and the pydicom spelling they stand for (equal entries are not listed).
_EQUIVALENT_VRS = {"xs": "US or SS", "ox": "OB or OW", "lt": "US or SS or OW", "up": "UL", "px": "OB or OW",
                   "na": "NONE"}

_TAG = re.compile(
    r"^\((?P<g1>[0-9A-Fa-f]{4})(?:-(?:(?P<gr>[oeuOEU])-)?(?P<g2>[0-9A-Fa-f]{4}))?,"
    r"(?:\"(?P<creator>[^\"]*)\",)?"
    r"(?P<e1>[0-9A-Fa-f]{2,4})(?:-(?:(?P<er>[oeuOEU])-)?(?P<e2>[0-9A-Fa-f]{2,4}))?\)$")

# DCMTK's range restrictions: a plain range means even numbers only.
_RESTRICTION = {"o": "odd", "e": "even", "u": "any"}


def _restriction(text: str | None, is_range: bool) -> str:
    if not is_range:
        return "any"
    return _RESTRICTION[text.lower()] if text else "even"


def parse_dictionary(path: Path) -> list[tuple[dict[str, object], str, str]]:
    """(tag fields, VR, name) of each entry, in file order."""
    entries = []
    for line in path.read_text(encoding="latin_1").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        fields = [f for f in fields if f != ""]
        match = _TAG.match(fields[0])
        if match is None:
            raise ValueError(f"cannot parse {line!r} in {path}")
        g1 = int(match["g1"], 16)
        g2 = int(match["g2"], 16) if match["g2"] else g1
        e1 = int(match["e1"], 16)
        e2 = int(match["e2"], 16) if match["e2"] else e1
        tag = {"g1": g1, "g2": g2, "gr": _restriction(match["gr"], match["g2"] is not None),
               "e1": e1, "e2": e2, "er": _restriction(match["er"], match["e2"] is not None),
               "creator": match["creator"]}
        # DCMTK's loader strips every white space of a name ("End NumberForBaseline" -> "EndNumberForBaseline")
        entries.append((tag, "".join(fields[1].split()), "".join(fields[2].split())))
    return entries


def _same_vr(dcmtk: str, pydicom_vr: str) -> bool:
    return dcmtk == pydicom_vr or _EQUIVALENT_VRS.get(dcmtk) == pydicom_vr


def generate(dicom_dic: Path, private_dic: Path) -> str:
    public: dict[int, tuple[str, str]] = {}
    repeating: dict[tuple[int, int, str, int, int, str], tuple[str, str]] = {}
    private: dict[tuple[int, str, int], tuple[str, str]] = {}
    private_repeating: dict[tuple[int, int, str, str, int], tuple[str, str]] = {}
    for path in (dicom_dic, private_dic):
        for tag, vr, name in parse_dictionary(path):
            g1, g2, e1, e2 = tag["g1"], tag["g2"], tag["e1"], tag["e2"]
            creator = tag["creator"]
            assert isinstance(g1, int) and isinstance(g2, int) and isinstance(e1, int) and isinstance(e2, int)
            if creator is not None:
                assert isinstance(creator, str)
                if g1 == g2 and e1 == e2:
                    private[(g1, creator, e1)] = (vr, name)  # later entries override earlier ones
                else:
                    assert e1 == e2, "private element ranges are not used by DCMTK's dictionaries"
                    private_repeating[(g1, g2, str(tag["gr"]), creator, e1)] = (vr, name)
            elif g1 == g2 and e1 == e2:
                public[g1 << 16 | e1] = (vr, name)
            else:
                repeating[(g1, g2, str(tag["gr"]), e1, e2, str(tag["er"]))] = (vr, name)

    names: dict[int, str] = {}
    vrs: dict[int, str] = {}
    for tag_int, (vr, name) in sorted(public.items()):
        known = DicomDictionary.get(tag_int)
        if known is None or known[4] != name:
            names[tag_int] = name
        if known is None or not _same_vr(vr, known[0]):
            vrs[tag_int] = vr
    not_in_dcmtk = sorted(t for t in DicomDictionary if t not in public)

    # DCMTK keeps its repeating entries sorted by (lower group, lower element) and takes the first match.
    rep_sorted = sorted(repeating.items(), key=lambda kv: (kv[0][0] << 16) | kv[0][3])
    prep_sorted = sorted(private_repeating.items(), key=lambda kv: ((kv[0][0] << 16) | kv[0][4], kv[0][3]))

    out = [
        '"""DCMTK\'s data dictionary where it differs from pydicom\'s (generated: do not edit).',
        "",
        "Written by tools/gen_dcmtk_names.py from DCMTK's dicom.dic and private.dic (what Orthanc loads);",
        "see that script for the meaning of each table.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "# public tag -> DCMTK name, where pydicom's keyword differs",
        "NAMES: dict[int, str] = {",
    ]
    out += [f"    0x{t:08X}: {n!r}," for t, n in names.items()]
    out += ["}", "", "# public tag -> DCMTK VR, where pydicom's VR differs", "VRS: dict[int, str] = {"]
    out += [f"    0x{t:08X}: {v!r}," for t, v in vrs.items()]
    out += ["}", "", "# public tags known to pydicom but not to DCMTK", "NOT_IN_DCMTK: frozenset[int] = frozenset({"]
    out += [f"    0x{t:08X}," for t in not_in_dcmtk]
    out += ["})", "",
            "# (group low, group high, group parity, element low, element high, element parity, VR, name),",
            "# in DCMTK's search order; parity is 'even', 'odd' or 'any'",
            "REPEATING: tuple[tuple[int, int, str, int, int, str, str, str], ...] = ("]
    out += [f"    (0x{k[0]:04X}, 0x{k[1]:04X}, {k[2]!r}, 0x{k[3]:04X}, 0x{k[4]:04X}, {k[5]!r}, {v[0]!r}, {v[1]!r}),"
            for k, v in rep_sorted]
    out += [")", "",
            "# (group, private creator, element) -> (VR, name); element < 0x100 = any block of the group",
            "PRIVATE: dict[tuple[int, str, int], tuple[str, str]] = {"]
    out += [f"    (0x{k[0]:04X}, {k[1]!r}, 0x{k[2]:04X}): ({v[0]!r}, {v[1]!r})," for k, v in sorted(private.items())]
    out += ["}", "",
            "# (group low, group high, group parity, private creator, element low byte, VR, name)",
            "PRIVATE_REPEATING: tuple[tuple[int, int, str, str, int, str, str], ...] = ("]
    out += [f"    (0x{k[0]:04X}, 0x{k[1]:04X}, {k[2]!r}, {k[3]!r}, 0x{k[4]:02X}, {v[0]!r}, {v[1]!r}),"
            for k, v in prep_sorted]
    out += [")", ""]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dicom-dic", type=Path, default=DEFAULT_DIR / "dicom.dic")
    parser.add_argument("--private-dic", type=Path, default=DEFAULT_DIR / "private.dic")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    args.output.write_text(generate(args.dicom_dic, args.private_dic), encoding="utf-8")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
