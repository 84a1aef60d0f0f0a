"""`--config=FILE`: a documented sample configuration built from the option table."""

from __future__ import annotations

import json
import sys

from .config_options import OPTIONS


def render_sample() -> str:
    lines = ["{", "  // Donjon configuration (Orthanc's option names and defaults).",
             "  // Comments are allowed; ${VAR} and ${VAR:-default} read the environment;",
             "  // every option can also be set as ORTHANC__OPTION_NAME in the environment.", ""]
    shown = [o for o in OPTIONS.values() if o.in_sample]
    for i, option in enumerate(shown):
        comma = "," if i < len(shown) - 1 else ""
        lines.append(f"  // {option.doc}")
        if option.default is None:
            lines.append(f'  // "{option.name}" : null{comma}')
        else:
            lines.append(f'  "{option.name}" : {json.dumps(option.default)}{comma}')
        lines.append("")
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_sample(path: str) -> None:
    text = render_sample()
    if path == "-":
        sys.stdout.write(text)
    else:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
