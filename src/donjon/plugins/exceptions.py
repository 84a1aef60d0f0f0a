"""The two errors a plugin script can see: Orthanc's `OrthancException` and an unsupported call."""

from __future__ import annotations

from ..errors import OrthancError, describe


class OrthancException(Exception):
    """`orthanc.OrthancException`: `args` is (error code, description), as in Orthanc's plugin >= 3.3."""

    def __init__(self, code: int, description: str | None = None):
        super().__init__(int(code), description or describe(code))

    @property
    def code(self) -> int:
        return int(self.args[0])

    @classmethod
    def of(cls, error: OrthancError) -> OrthancException:
        return cls(error.code, error.description)


class UnsupportedCall(NotImplementedError, AttributeError):
    """A part of Orthanc's SDK that Donjon does not offer.

    Also an `AttributeError`, so that `hasattr(orthanc, name)` answers False instead of raising:
    scripts that probe for optional features keep working.
    """

    def __init__(self, name: str):
        super().__init__(f"orthanc.{name} is not supported by Donjon's Python plugin host "
                         "(see docs/plugins.md for the supported calls)")
        self.name = name


class UnsupportedImport(ImportError, NotImplementedError):
    """`from orthanc import X` of an unsupported X: an ImportError (what the statement raises) that keeps
    the clear message, where Python would replace an AttributeError by "cannot import name"."""

    def __init__(self, name: str):
        super().__init__(str(UnsupportedCall(name)), name="orthanc")
        self.call = name
