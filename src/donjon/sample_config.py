"""`--config=FILE`: a documented sample configuration, built from the table of options.

Every option of the sample is written with its default value, so that loading the sample back gives
the defaults; options that are unset by default are shown commented out, with an example value.
"""

from __future__ import annotations

import json
import sys
import textwrap
from typing import Any

from . import __version__
from .config_options import OPTIONS, SECTIONS, Option

_HEADER = f"""\
/**
 * Configuration of Donjon {__version__}, a lightweight RESTful DICOM server speaking Orthanc's
 * REST API. The option names and the defaults are Orthanc's: an Orthanc configuration can be
 * used as is.
 *
 * - Comments like these are allowed. A folder of .json files can be given instead of one file.
 * - "${{VAR}}" and "${{VAR:-default}}" take values from the environment, e.g.
 *   "HttpPort" : ${{HTTP_PORT:-8042}}
 * - Every option can also be set by an environment variable, which wins over the files:
 *   ORTHANC__HTTP_PORT=8043, ORTHANC__DICOM_MODALITIES='{{"pacs": ["PACS", "10.0.0.1", 104]}}'.
 * - Relative paths are relative to the folder of the configuration file.
 **/"""


def _comment(text: str, indent: str) -> list[str]:
    return [f"{indent}// {line}" for line in textwrap.wrap(text, width=96 - len(indent))]


def _value(value: Any, indent: str) -> list[str]:
    """The JSON text of a value, one item per line for non-empty objects and arrays of objects."""
    if isinstance(value, dict) and value:
        text = json.dumps(value, indent=2, ensure_ascii=False)
    else:
        text = json.dumps(value, ensure_ascii=False)
        if len(text) > 90:
            text = json.dumps(value, indent=2, ensure_ascii=False)
    lines = text.split("\n")
    return [lines[0]] + [indent + line for line in lines[1:]]


def _entry(option: Option, value: Any, indent: str, comma: str, commented: bool) -> list[str]:
    body = _value(value, indent)
    body[0] = f'{indent}"{option.name}" : {body[0]}'
    body[-1] += comma
    if commented:
        body = [f"{indent}// {line[len(indent):]}" for line in body]
    return body


def render_sample() -> str:
    indent = "  "
    shown = [o for o in OPTIONS.values() if o.in_sample]
    active = [o for o in shown if o.default is not None]
    last_active = active[-1].name if active else None
    lines = ["{", *(indent + line for line in _HEADER.split("\n"))]
    for section in SECTIONS:
        options = [o for o in shown if o.section == section]
        if not options:
            continue
        lines += ["", "", f"{indent}/**", f"{indent} * {section}", f"{indent} **/"]
        for option in options:
            lines.append("")
            lines += _comment(option.doc, indent)
            comma = "" if option.name == last_active else ","
            if option.default is None:
                example = option.example if option.example is not None else ""
                lines += _entry(option, example, indent, ",", commented=True)
            else:
                if option.example is not None and option.example != option.default:
                    example = json.dumps(option.example, ensure_ascii=False)
                    lines.append(f'{indent}// Example: "{option.name}" : {example}')
                lines += _entry(option, option.default, indent, comma, commented=False)
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_sample(path: str) -> None:
    """Write the sample to `path` ("-" for the standard output)."""
    text = render_sample()
    if path == "-":
        sys.stdout.write(text)
    else:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
