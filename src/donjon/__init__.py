"""Donjon: a lightweight RESTful DICOM server that speaks Orthanc's REST API."""

import sys as _sys

__version__ = "0.1.0"


def _load_pydicom() -> None:
    """pydicom imports `requests` for one purpose, downloading its own test files, which Donjon never
    does: 5 MB of resident memory and ~50 ms of start-up. It is hidden while pydicom loads, and
    importable again afterwards (a Python plugin may use it)."""
    if "pydicom" in _sys.modules or "requests" in _sys.modules:
        return
    _sys.modules["requests"] = None  # type: ignore[assignment]  # `import requests` raises ImportError
    try:
        import pydicom  # noqa: F401
    finally:
        if "requests" in _sys.modules and _sys.modules["requests"] is None:
            del _sys.modules["requests"]


_load_pydicom()
