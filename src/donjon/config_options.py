"""Every configuration option Donjon knows: Orthanc's names, defaults, types and a short comment.

This table drives validation at start-up, `--config=FILE` (the documented sample) and the defaults.
The defaults are those of Orthanc's code, which sometimes differ from the values written in Orthanc's
sample file (e.g. `Name` is "" and `SslTrustedClientCertificates` is "trustedCertificates.pem").

An option whose default is `None` is "unset" by default: Orthanc treats its absence specially (e.g.
`IndexDirectory` falls back to `StorageDirectory`, `AuthenticationEnabled` follows
`RemoteAccessAllowed`, the `...TransferSyntaxAccepted` switches only act when present).
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .dicomweb.settings import validate as _dicomweb_section
from .index.postgres_settings import check_section as _postgresql_section
from .plugins.settings import validate as _python_section
from .registry import ConfigurationError, build_content_type_names, build_metadata_names
from .storage.s3_settings import validate as _s3_section

log = logging.getLogger(__name__)

KINDS = ("bool", "int", "uint", "float", "str", "str-list", "list", "dict", "str-or-list", "any")


@dataclass(frozen=True)
class Option:
    name: str
    default: Any
    kind: str  # one of KINDS
    doc: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    in_sample: bool = True
    maximum: float | None = None
    ignore_case: bool = False  # choices compared case-insensitively, the value becomes the canonical one
    example: Any = None  # shown commented-out in the sample instead of the default
    validator: Callable[[Option, Any], Any] | None = None  # further checks; returns the (normalised) value
    section: str = ""

    def default_value(self) -> Any:
        default = self.default
        return copy.deepcopy(default) if isinstance(default, (dict, list)) else default  # read per request

    def check(self, value: Any) -> Any:
        """The value if it has the right type and range, else a `ConfigurationError` naming the option.

        Orthanc wants JSON Booleans and integers; Donjon also accepts the strings "true"/"false" and
        decimal strings (handy with `${VAR}` inside quotes).
        """
        value = self._check_kind(value)
        if self.validator is not None:
            value = self.validator(self, value)
        return value

    def _check_kind(self, value: Any) -> Any:
        kind = self.kind
        if kind == "any":
            return value
        if kind == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.strip().lower() in ("true", "false"):
                return value.strip().lower() == "true"
            raise self.error(value, "a Boolean (true or false)")
        if kind in ("int", "uint"):
            if isinstance(value, bool):
                raise self.error(value, "an integer")
            if isinstance(value, str):
                try:
                    value = int(value.strip())
                except ValueError:
                    raise self.error(value, "an integer") from None
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if not isinstance(value, int):
                raise self.error(value, "an integer")
            minimum = 0 if kind == "uint" and self.minimum is None else self.minimum
            if (minimum is not None and value < minimum) or (self.maximum is not None and value > self.maximum):
                raise self.error(value, self._range_text(minimum))
            return value
        if kind == "float":
            if isinstance(value, str):
                try:
                    value = float(value.strip())
                except ValueError:
                    raise self.error(value, "a number") from None
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise self.error(value, "a number")
            if (self.minimum is not None and value < self.minimum) or (
                    self.maximum is not None and value > self.maximum):
                raise self.error(value, f"a number between {self.minimum} and {self.maximum}")
            return float(value)
        if kind == "str":
            if not isinstance(value, str):
                raise self.error(value, "a string")
            if self.choices:
                return self._choice(value)
            return value
        if kind == "str-list":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise self.error(value, "a JSON array of strings")
            return value
        if kind == "list":
            if not isinstance(value, list):
                raise self.error(value, "a JSON array")
            return value
        if kind == "dict":
            if not isinstance(value, dict):
                raise self.error(value, "a JSON object")
            return value
        if kind == "str-or-list":
            if isinstance(value, str):
                return [value]
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return value
            raise self.error(value, "a string or a JSON array of strings")
        raise AssertionError(f"unknown kind {kind!r} of option {self.name}")

    def _choice(self, value: str) -> str:
        if value in self.choices:
            return value
        if self.ignore_case:
            for choice in self.choices:
                if choice.lower() == value.lower():
                    return choice
        raise self.error(value, "one of " + ", ".join(self.choices))

    def _range_text(self, minimum: int | None) -> str:
        if minimum is not None and self.maximum is not None:
            return f"an integer between {minimum} and {self.maximum}"
        if minimum is not None:
            return f"an integer >= {minimum}"
        return f"an integer <= {self.maximum}"

    def error(self, value: Any, expected: str) -> ConfigurationError:
        """A `ConfigurationError` saying what this option expects and what it got."""
        shown = repr(value)
        if len(shown) > 60:
            shown = shown[:57] + "..."
        return ConfigurationError(f'Bad value for the configuration option "{self.name}": expected {expected}, '
                                  f"got {shown}")

    def fail(self, message: str) -> ConfigurationError:
        return ConfigurationError(f'Bad value for the configuration option "{self.name}": {message}')


# -- validators (each returns the value, possibly normalised) ---------------------------------------

def _aet(option: Option, value: str) -> str:
    if not value:
        raise option.fail("an application entity title cannot be empty")
    if len(value) > 16:
        raise option.fail(f"an application entity title has at most 16 characters, got {value!r}")
    if not re.fullmatch(r"[A-Z0-9_-]+", value):
        log.warning('For best interoperability, only upper-case letters, digits, "-" and "_" should be '
                    "used in an AET: %r (option %s)", value, option.name)
    return value


def _non_empty(option: Option, value: str) -> str:
    if not value:
        raise option.fail("it cannot be empty")
    return value


def is_transfer_syntax(uid: str) -> bool:
    """Whether `uid` is a transfer syntax that the DICOM standard defines."""
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)*", uid):
        return False
    from pydicom.uid import UID

    try:
        return bool(UID(uid).is_transfer_syntax)
    except ValueError:
        return False


def _transfer_syntax(option: Option, value: str) -> str:
    if not is_transfer_syntax(value):
        raise option.fail(f"unknown transfer syntax {value!r}")
    return value


_NAME = re.compile(r"[A-Za-z0-9_-]+")


def _symbolic_name(option: Option, name: str) -> None:
    if not _NAME.fullmatch(name):
        raise option.fail("only alphanumeric, dash characters and underscores are allowed in the names "
                          f"of modalities/peers, but found: {name!r}")


def _port_of(option: Option, name: str, port: Any) -> None:
    if isinstance(port, str) and port.strip().isdigit():
        port = int(port)
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65534:
        raise option.fail(f'"{name}": the port must be an integer between 1 and 65534, got {port!r}')


MANUFACTURERS = ("Generic", "GenericNoWildcardInDates", "GenericNoUniversalWildcard", "Vitrea", "GE")


def _modalities(option: Option, value: dict[str, Any]) -> dict[str, Any]:
    for name, spec in value.items():
        _symbolic_name(option, name)
        if isinstance(spec, list):
            if len(spec) not in (3, 4) or not all(isinstance(v, str) for v in spec[:2]):
                raise option.fail(f'"{name}" must be ["AET", "host", port] or ["AET", "host", port, '
                                  '"Manufacturer"], or a JSON object')
            aet, port, manufacturer = spec[0], spec[2], spec[3] if len(spec) == 4 else "Generic"
        elif isinstance(spec, dict):
            for key in ("AET", "Host", "Port"):
                if key not in spec:
                    raise option.fail(f'"{name}" has no "{key}"')
            if not isinstance(spec["AET"], str) or not isinstance(spec["Host"], str):
                raise option.fail(f'"{name}": "AET" and "Host" must be strings')
            aet, port, manufacturer = spec["AET"], spec["Port"], spec.get("Manufacturer", "Generic")
        else:
            raise option.fail(f'"{name}" must be a JSON array or a JSON object')
        if not aet:
            raise option.fail(f'"{name}": the AET cannot be empty')
        _port_of(option, name, port)
        if manufacturer not in MANUFACTURERS:
            raise option.fail(f'"{name}": unknown manufacturer {manufacturer!r} (one of {", ".join(MANUFACTURERS)})')
    return value


def _peers(option: Option, value: dict[str, Any]) -> dict[str, Any]:
    for name, spec in value.items():
        _symbolic_name(option, name)
        if isinstance(spec, list):
            if len(spec) not in (1, 3) or not all(isinstance(v, str) for v in spec):
                raise option.fail(f'"{name}" must be ["url"], ["url", "user", "password"] or a JSON object')
            url = spec[0]
        elif isinstance(spec, dict):
            url = spec.get("Url") or spec.get("URL")
            if not isinstance(url, str):
                raise option.fail(f'"{name}" has no "Url"')
        else:
            raise option.fail(f'"{name}" must be a JSON array or a JSON object')
        if not url or ("://" in url and not url.startswith(("http://", "https://"))):
            raise option.fail(f'"{name}": bad URL {url!r}')
        _peer_rules(option, name, spec)
    return value


def _peer_rules(option: Option, name: str, spec: Any) -> None:
    """The rest of Orthanc's rules (credentials, headers, Timeout, user properties): Orthanc refuses
    to start with a peer that breaks them."""
    from .errors import OrthancError
    from .network.peers import parse_peer

    try:
        parse_peer(spec)
    except OrthancError as e:
        raise option.fail(f'"{name}": {e.details or e.description}') from None


def _string_map(option: Option, value: dict[str, Any]) -> dict[str, Any]:
    for key, item in value.items():
        if not isinstance(item, str):
            raise option.fail(f'the value of "{key}" must be a string')
    return value


class _QuietRegistry:
    """The registry warns about reserved keys when the server context is built: not twice."""

    def __enter__(self) -> None:
        self.logger = logging.getLogger(build_metadata_names.__module__)
        self.level = self.logger.level
        self.logger.setLevel(logging.ERROR)

    def __exit__(self, *exc: object) -> None:
        self.logger.setLevel(self.level)


def _user_metadata(option: Option, value: dict[str, Any]) -> dict[str, Any]:
    with _QuietRegistry():
        build_metadata_names(value)  # raises a ConfigurationError naming UserMetadata
    return value


def _user_content_type(option: Option, value: dict[str, Any]) -> dict[str, Any]:
    with _QuietRegistry():
        build_content_type_names(value)  # raises a ConfigurationError naming UserContentType
    return value


def _dictionary(option: Option, value: dict[str, Any]) -> dict[str, Any]:
    for tag, entry in value.items():
        if not re.fullmatch(r"[0-9A-Fa-f]{4},[0-9A-Fa-f]{1,4}", tag):
            raise option.fail(f"bad tag {tag!r} (expected gggg,eeee)")
        ok = (isinstance(entry, list) and 2 <= len(entry) <= 5
              and isinstance(entry[0], str) and isinstance(entry[1], str)
              and all(isinstance(v, int) and not isinstance(v, bool) for v in entry[2:4])
              and (len(entry) < 5 or isinstance(entry[4], str)))
        if not ok:
            raise option.fail(f"the definition of the {tag!r} dictionary entry is invalid")
    return value


_LEVELS = ("Patient", "Study", "Series", "Instance")


def _extra_main_tags(option: Option, value: dict[str, Any]) -> dict[str, Any]:
    for level, tags in value.items():
        if level not in _LEVELS:
            raise option.fail(f"unknown level {level!r} (one of {', '.join(_LEVELS)})")
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise option.fail(f'"{level}" must be a JSON array of tag names')
    return value


def _bool_map(option: Option, value: dict[str, Any]) -> dict[str, Any]:
    for key, item in value.items():
        if not isinstance(item, bool):
            raise option.fail(f'"{key}" must be a Boolean')
    return value


def _pkcs11(option: Option, value: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(value.get("Module"), str):
        raise option.fail('no path to the PKCS#11 module ("Module")')
    if "Pin" in value and not isinstance(value["Pin"], str):
        raise option.fail('"Pin" must be a string')
    if "Verbose" in value and not isinstance(value["Verbose"], bool):
        raise option.fail('"Verbose" must be a Boolean')
    return value


def _jobs_threads(option: Option, value: dict[str, Any]) -> dict[str, Any]:
    for key, item in value.items():
        if isinstance(item, bool) or not isinstance(item, int) or item < 0:
            raise option.fail(f'"{key}" must be an integer >= 0')
    return value


def _port(name: str, default: int, doc: str) -> Option:
    return Option(name, default, "uint", doc, minimum=1, maximum=65535)


def _group(title: str, options: tuple[Option, ...]) -> tuple[Option, ...]:
    return tuple(dataclasses.replace(o, section=title) for o in options)


_ALL_SYNTAXES = ["1.2.840.10008.1.*"]
ENCODINGS = ("Ascii", "Utf8", "Latin1", "Latin2", "Latin3", "Latin4", "Latin5", "Cyrillic", "Windows1251",
             "Arabic", "Greek", "Hebrew", "Thai", "Japanese", "Chinese", "JapaneseKanji", "Korean",
             "SimplifiedChinese")
_SYNTAX_GROUPS = ("Deflated", "Jpeg", "Jpeg2000", "JpegLossless", "Jpip", "Mpeg2", "Rle", "Mpeg4", "H265")

_OPTIONS: tuple[Option, ...] = (
    *_group("General", (
        Option("Name", "", "str", "Name of this server, shown by /system and the Explorer."),
        Option("StorageDirectory", "OrthancStorage", "str",
               "Folder of the stored files; a relative path is relative to the configuration's folder."),
        Option("IndexDirectory", None, "str", "Folder of the SQLite index (default: StorageDirectory).",
               example="OrthancStorage"),
        Option("TemporaryDirectory", None, "str",
               "Folder for large temporary files, e.g. archives (default: the system's).",
               example="/tmp/Donjon/"),
        Option("StorageCompression", False, "bool",
               "Compress new attachments with zlib (Orthanc's on-disk format)."),
        Option("StorageCompressionLevel", 1, "int",
               "zlib level (1..9) when StorageCompression is on (Donjon extension). 1 compresses 4-6x "
               "faster than Orthanc's 6 for 2-5% larger files; any level reads back everywhere.",
               minimum=1, maximum=9),
        Option("MaximumStorageSize", 0, "uint", "Maximum size of the storage in MB (0: no limit)."),
        Option("MaximumPatientCount", 0, "uint", "Maximum number of patients (0: no limit)."),
        Option("MaximumStorageMode", "Recycle", "str",
               'When a limit is reached: "Recycle" the oldest unprotected patients, or "Reject" new '
               "instances. Anything else refuses to start (Orthanc would silently recycle).",
               choices=("Recycle", "Reject")),
        Option("MaximumStorageCacheSize", 128, "uint",
               "Size in MB of the in-memory cache of recently used files (0: no cache). With a folder "
               "storage it keeps files read, with S3 also files written."),
        Option("LuaScripts", [], "str-list", "Lua scripts to load (Lua is not supported by Donjon)."),
        Option("LuaHeartBeatPeriod", 0, "uint", "Seconds between two calls of the Lua OnHeartBeat callback."),
        Option("Plugins", [], "str-list",
               "Plugins to load (Orthanc's shared-library plugins cannot be loaded by Donjon)."),
        Option("ConcurrentJobs", 2, "uint", "Number of jobs that run at the same time (0: number of cores)."),
        Option("JobsEngineThreadsCount", {"ResourceModification": 1}, "dict",
               "Threads used inside each kind of parallel job (0: number of cores).",
               validator=_jobs_threads),
    )),
    *_group("HTTP server", (
        Option("HttpServerEnabled", True, "bool", "Serve the REST API and the Explorer over HTTP."),
        Option("OrthancExplorerEnabled", True, "bool", "Serve the web user interface."),
        _port("HttpPort", 8042, "TCP port of the HTTP server."),
        Option("HttpDescribeErrors", True, "bool", "Answer HTTP errors with a JSON body describing them."),
        Option("HttpCompressionEnabled", False, "bool", "Compress answers (gzip/deflate) when clients accept it."),
        Option("WebDavEnabled", True, "bool", "Publish the content as a WebDAV share under /webdav/."),
        Option("WebDavDeleteAllowed", False, "bool", "Allow deletions through WebDAV."),
        Option("WebDavUploadAllowed", True, "bool", "Allow uploads through WebDAV."),
    )),
    *_group("DICOM server", (
        Option("DicomServerEnabled", True, "bool", "Run the DICOM server (C-ECHO, C-STORE, C-FIND...)."),
        Option("DicomAet", "ORTHANC", "str", "Application entity title of this server (1 to 16 characters).",
               validator=_aet),
        Option("DicomCheckCalledAet", False, "bool", "Refuse associations whose called AET is not DicomAet."),
        _port("DicomPort", 4242, "TCP port of the DICOM server."),
        Option("DefaultEncoding", "Latin1", "str",
               "Character set of DICOM files without SpecificCharacterSet, and of C-FIND answers: "
               + ", ".join(ENCODINGS) + ".", choices=ENCODINGS, ignore_case=True),
        Option("AcceptedTransferSyntaxes", _ALL_SYNTAXES, "str-or-list",
               'Transfer syntaxes the C-STORE server accepts; "?" and "*" are wildcards.'),
        *(Option(f"{group}TransferSyntaxAccepted", None, "bool",
                 f"Accept (true) or refuse (false) the {group} transfer syntaxes, applied after "
                 "AcceptedTransferSyntaxes (only when set).", example=True)
          for group in _SYNTAX_GROUPS),
        Option("UnknownSopClassAccepted", False, "bool",
               "Accept C-STORE of unknown storage SOP classes (promiscuous mode)."),
        Option("DicomScpTimeout", 30, "uint", "Seconds of inactivity before an incoming association is closed."),
    )),
    *_group("Security of the HTTP server", (
        Option("RemoteAccessAllowed", False, "bool", "Serve HTTP clients other than localhost."),
        Option("SslEnabled", False, "bool", "Serve HTTPS instead of HTTP."),
        Option("SslCertificate", "certificate.pem", "str", "PEM file holding the certificate and its private key."),
        Option("SslMinimumProtocolVersion", 4, "uint",
               "Minimum TLS version: 0 SSL2+, 1 SSL3+, 2 TLS 1.0+, 3 TLS 1.1+, 4 TLS 1.2+, 5 TLS 1.3.",
               maximum=5),
        Option("SslCiphersAccepted", None, "str-list", "TLS ciphers accepted (default: FIPS 140-2 ciphers).",
               example=["AES128-GCM-SHA256"]),
        Option("SslVerifyPeers", False, "bool", "Require client certificates."),
        Option("SslTrustedClientCertificates", "trustedCertificates.pem", "str",
               "PEM file of the client certificates (or CAs) trusted when SslVerifyPeers is true."),
        Option("AuthenticationEnabled", None, "bool",
               "HTTP Basic authentication; when unset, it is on exactly when RemoteAccessAllowed is true.",
               example=False),
        Option("RegisteredUsers", {}, "dict",
               'Users of the HTTP API, {"user": "password"} (passwords in clear text).',
               example={"alice": "alicePassword"}, validator=_string_map),
    )),
    *_group("Security of DICOM connections", (
        Option("DicomTlsEnabled", False, "bool", "DICOM over TLS for the DICOM server."),
        Option("DicomTlsCertificate", "", "str", "PEM certificate for DICOM TLS (key in DicomTlsPrivateKey).",
               example="donjon.crt"),
        Option("DicomTlsPrivateKey", "", "str", "PEM private key of DicomTlsCertificate.", example="donjon.key"),
        Option("DicomTlsTrustedCertificates", "", "str", "PEM certificates trusted for DICOM TLS.",
               example="trusted.crt"),
        Option("DicomTlsRemoteCertificateRequired", True, "bool",
               "Refuse DICOM TLS peers that present no certificate."),
        Option("DicomTlsMinimumProtocolVersion", 0, "uint",
               "Minimum TLS version for DICOM TLS (0: the BCP 195 profile; 1..5 as SslMinimumProtocolVersion).",
               maximum=5),
        Option("DicomTlsCiphersAccepted", None, "str-list", "Ciphers for DICOM TLS (OpenSSL names).",
               example=[]),
        Option("DicomAlwaysAllowEcho", True, "bool", "Answer C-ECHO from modalities not in DicomModalities."),
        Option("DicomAlwaysAllowStore", True, "bool", "Accept C-STORE from modalities not in DicomModalities."),
        Option("DicomAlwaysAllowFind", False, "bool",
               "Answer C-FIND (patients to instances) from unknown modalities (security risk)."),
        Option("DicomAlwaysAllowFindWorklist", False, "bool",
               "Answer worklist C-FIND from unknown modalities (security risk)."),
        Option("DicomAlwaysAllowGet", False, "bool", "Answer C-GET from unknown modalities (security risk)."),
        Option("DicomAlwaysAllowMove", False, "bool", "Answer C-MOVE from unknown modalities (security risk)."),
        Option("DicomCheckModalityHost", False, "bool", "Also check the IP address of known modalities."),
    )),
    *_group("Network topology", (
        Option("DicomModalities", {}, "dict",
               'Known DICOM modalities: {"name": ["AET", "host", port]} or {"name": ["AET", "host", port, '
               '"Manufacturer"]} or {"name": {"AET": ..., "Host": ..., "Port": ..., "AllowStore": ...}}.',
               example={"sample": ["STORESCP", "127.0.0.1", 2000]}, validator=_modalities),
        Option("DicomModalitiesInDatabase", False, "bool",
               "Keep the modalities in the index (defined over REST) instead of DicomModalities."),
        Option("DicomEchoChecksFind", False, "bool", "Follow each C-ECHO test by a C-FIND test."),
        Option("DicomScuTimeout", 10, "uint", "Timeout in seconds of outgoing DICOM associations."),
        Option("DicomScuPreferredTransferSyntax", "1.2.840.10008.1.2.1", "str",
               "Syntax to transcode to when a modality does not accept a file's syntax.",
               validator=_transfer_syntax),
        Option("DicomThreadsCount", 4, "uint", "Concurrent DICOM operations of the DICOM server.", minimum=1),
        Option("OrthancPeers", {}, "dict",
               'Other Orthanc-compatible servers: {"name": ["url"]}, {"name": ["url", "user", "password"]} '
               'or {"name": {"Url": ..., "Username": ..., "Password": ..., "HttpHeaders": {...}}}.',
               example={"peer": ["http://127.0.0.1:8043/", "alice", "alicePassword"]}, validator=_peers),
        Option("OrthancPeersInDatabase", False, "bool",
               "Keep the peers in the index (defined over REST) instead of OrthancPeers."),
        Option("HttpProxy", "", "str", 'Proxy of outgoing HTTP requests, e.g. "user:password@host:3128".'),
        Option("HttpVerbose", False, "bool", "Log the details of outgoing HTTP requests."),
        Option("HttpTimeout", 60, "uint", "Timeout in seconds of outgoing HTTP requests (0: 60)."),
        Option("HttpsVerifyPeers", True, "bool", "Check the certificates of HTTPS servers (false is insecure)."),
        Option("HttpsCACertificates", "", "str",
               'CA certificates (PEM) to check HTTPS servers ("": the system default).'),
    )),
    *_group("Advanced options", (
        Option("UserMetadata", {}, "dict",
               'Names of user-defined metadata: {"name": number}, numbers between 1024 and 65535.',
               example={"Sample": 1024}, validator=_user_metadata),
        Option("UserContentType", {}, "dict",
               'Names of user-defined attachments: {"name": number} or {"name": [number, "mime/type"]}.',
               example={"sample": 1024, "sample2": [1025, "application/pdf"]}, validator=_user_content_type),
        Option("StableAge", 60, "uint",
               "Seconds without a new instance before a patient, study or series is stable."),
        Option("StrictAetComparison", False, "bool", "Compare AETs case-sensitively."),
        Option("StoreMD5ForAttachments", True, "bool", "Store the MD5 of every attachment."),
        Option("LimitFindResults", 0, "uint",
               "Maximum answers of a C-FIND at patient, study or series level (0: no limit)."),
        Option("LimitFindInstances", 0, "uint", "Maximum answers of a C-FIND at instance level (0: no limit)."),
        Option("LogExportedResources", False, "bool", "Record what is sent to modalities and peers in /exports."),
        Option("KeepAlive", True, "bool", "HTTP keep-alive (persistent connections)."),
        Option("KeepAliveTimeout", 1, "uint", "Seconds an idle keep-alive connection stays open."),
        Option("TcpNoDelay", True, "bool", "Disable Nagle's algorithm on HTTP connections."),
        Option("HttpThreadsCount", 50, "uint", "Threads serving HTTP requests.", minimum=1),
        Option("StoreDicom", True, "bool", "Store the DICOM files (false: index-only mode)."),
        Option("DicomAssociationCloseDelay", 5, "uint",
               "Seconds before an idle association opened by a Lua script is closed."),
        Option("QueryRetrieveSize", 100, "uint", "Number of query/retrieve requests kept in memory."),
        Option("CaseSensitivePN", False, "bool", "Case-sensitive matching of person names in C-FIND."),
        Option("Pkcs11", None, "dict", "PKCS#11 module for HTTPS client authentication with smart cards.",
               example={"Module": "/usr/local/lib/libbeidpkcs11.so", "Pin": "1234", "Verbose": True},
               validator=_pkcs11),
        Option("LoadPrivateDictionary", True, "bool", "Load the dictionary of known private tags."),
        Option("Locale", None, "str", "Locale used for case-insensitive comparisons (default: autodetected).",
               example="en_US.UTF-8"),
        Option("Dictionary", {}, "dict",
               'Extra DICOM dictionary entries: {"gggg,eeee": ["VR", "Name", min, max, "PrivateCreator"]}.',
               example={"0014,1020": ["DA", "ValidationExpiryDate", 1, 1]}, validator=_dictionary),
        Option("ExternalDictionaries", None, "str-list", "DICOM dictionaries (DCMTK format) replacing the default.",
               example=["/usr/share/libdcmtk17/dicom.dic"]),
        Option("SynchronousCMove", True, "bool", "Run incoming C-MOVE synchronously (false: as jobs)."),
        Option("JobsHistorySize", 10, "uint", "Number of finished jobs kept in the history."),
        Option("SaveJobs", True, "bool", "Save the jobs in the index so that they survive a restart."),
        Option("OverwriteInstances", False, "bool", "Replace an instance that is received again."),
        Option("MediaArchiveSize", 1, "uint", "Number of asynchronously built archives kept."),
        Option("StorageAccessOnFind", "Always", "str",
               'When finds may read the stored files: "Always", "Answers" (only to build answers) or "Never".',
               choices=("Always", "Answers", "Never")),
        Option("MetricsEnabled", True, "bool", "Collect the metrics of /tools/metrics-prometheus."),
        Option("ExecuteLuaEnabled", False, "bool", "Allow /tools/execute-script (security risk)."),
        Option("RestApiWriteToFileSystemEnabled", False, "bool",
               "Allow the routes that write to the server's disk, e.g. /instances/{id}/export."),
        Option("HttpRequestTimeout", 30, "uint", "Timeout in seconds of incoming HTTP requests."),
        Option("DefaultPrivateCreator", "", "str", "Private creator used when none is given."),
        Option("StorageCommitmentReportsSize", 100, "uint", "Number of storage commitment reports kept."),
        Option("TranscodeDicomProtocol", True, "bool",
               "Transcode when a modality does not accept a file's transfer syntax."),
        Option("BuiltinDecoderTranscoderOrder", "After", "str",
               'Built-in decoder/transcoder relative to plugins: "After", "Before" or "Disabled".',
               choices=("After", "Before", "Disabled")),
        Option("IngestTranscoding", None, "str", "Transcode every incoming instance to this transfer syntax.",
               example="1.2.840.10008.1.2", validator=_transfer_syntax),
        Option("IngestTranscodingOfUncompressed", True, "bool",
               "Apply IngestTranscoding to uncompressed incoming files."),
        Option("IngestTranscodingOfCompressed", True, "bool",
               "Apply IngestTranscoding to compressed incoming files."),
        Option("DicomLossyTranscodingQuality", 90, "uint", "Quality (1..100) of lossy (JPEG) transcoding.",
               minimum=1, maximum=100),
        Option("SyncStorageArea", True, "bool", "fsync every stored file before answering."),
        Option("IndexSyncInterval", 0.2, "float",
               "Seconds between the fsyncs of the index commits of stores (Donjon extension). A store "
               "is answered once its file is fsynced and its index rows committed; the commit is made "
               "durable with the others of the interval, and after a power cut the files of lost "
               "commits are stored again at start-up. 0: fsync every commit. Ignored when "
               "SyncStorageArea is false.", minimum=0, maximum=60),
        Option("MallocArenaMax", 5, "uint", "glibc malloc arenas (ignored by Donjon)."),
        Option("DeidentifyLogs", True, "bool", "Remove patient data from the logs of DICOM queries."),
        Option("DeidentifyLogsDicomVersion", "2023b", "str",
               'DICOM edition of the de-identification of logs: "2008", "2017c", "2021b" or "2023b".',
               choices=("2008", "2017c", "2021b", "2023b")),
        Option("MaximumPduLength", 16384, "uint", "Maximum PDU length in bytes (4096..131072).",
               minimum=4096, maximum=131072),
        Option("DatabaseServerIdentifier", None, "str",
               "Identifier of this server in a shared database (default: derived from the host).",
               example="Donjon1", validator=_non_empty),
        Option("CheckRevisions", False, "bool",
               "Protect metadata and attachments with revisions (ETag, If-Match)."),
        Option("SynchronousZipStream", True, "bool", "Stream synchronous ZIP archives while they are built."),
        Option("ZipLoaderThreads", 0, "uint", "Threads reading files while building archives (0: none)."),
        Option("ExtraMainDicomTags", {}, "dict",
               'Extra tags stored in the index per level: {"Instance": ["Rows", ...], "Series": [...]}.',
               example={"Instance": ["Rows", "Columns"], "Series": [], "Study": [], "Patient": []},
               validator=_extra_main_tags),
        Option("Warnings", {"W001_TagsBeingReadFromStorage": True, "W002_InconsistentDicomTagsInDb": True},
               "dict", "Switches of some warnings in the logs.", validator=_bool_map),
    )),
    *_group("Limits against hostile input (Donjon extension)", (
        Option("MaximumRequestBodySize", 4096, "uint",
               "Largest HTTP request body in MB; a larger one is refused with 413.", minimum=1),
        Option("MaximumJsonDepth", 256, "uint",
               "Deepest nesting of a JSON request body; a deeper one is refused with 400.",
               minimum=8, maximum=1000),
        Option("MaximumDecompressedSize", 512, "uint",
               "Largest size in MB of a gzip-encoded body or of one ZIP entry once decompressed (413 beyond).",
               minimum=1),
        Option("MaximumZipUncompressedSize", 4096, "uint",
               "Largest total size in MB of the files of one uploaded ZIP archive (413 beyond).", minimum=1),
        Option("MaximumDicomSequenceDepth", 64, "uint",
               "Deepest nesting of sequences in a DICOM file; a deeper file is refused.", minimum=4, maximum=256),
        Option("MaximumDicomElements", 1000000, "uint",
               "Most data elements (nested ones included) in a DICOM file; a file with more is refused.",
               minimum=1000),
        Option("MaximumDecodedFrameSize", 256, "uint",
               "Largest decoded frame in MB that the rendering routes decode (413 beyond).", minimum=1),
        Option("DicomMaximumAssociations", 64, "uint",
               "Simultaneous incoming DICOM associations; more are rejected (A-ASSOCIATE-RJ, transient).",
               minimum=1),
        Option("CrossOriginCheck", True, "bool",
               "Refuse state-changing HTTP requests whose Origin or Referer is not this server."),
    )),
    *_group("Legacy options", (
        Option("LimitJobs", 10, "uint", "Ignored since Orthanc 1.4.", in_sample=False),
    )),
)

# Sections read by Orthanc plugins that Donjon implements (or will): known, so that they do not warn.
_PLUGIN_SECTIONS: tuple[Option, ...] = _group("Plugins", tuple(
    Option(name, None, kind, f"Section of the {what}.", in_sample=False)
    for name, kind, what in (
        ("PostgreSQL", "dict", "PostgreSQL index and storage plugin"),
        ("MySQL", "dict", "MySQL index and storage plugin"),
        ("Odbc", "dict", "ODBC index and storage plugin"),
        ("DicomWeb", "dict", "DICOMweb plugin"),
        ("Python", "dict", "Python plugin (Path, Verbose; Donjon's CallbackTimeout)"),
        ("PythonScript", "str", "Python plugin (path of the script)"),
        ("PythonVerbose", "bool", "Python plugin (verbose logs)"),
        ("Worklists", "dict", "worklists plugin"),
        ("Housekeeper", "dict", "housekeeper plugin"),
        ("DelayedDeletion", "dict", "delayed deletion plugin"),
        ("Transfers", "dict", "transfers accelerator plugin"),
        ("Authorization", "dict", "authorization plugin"),
        ("OrthancExplorer2", "dict", "Orthanc Explorer 2 plugin"),
        ("StoneWebViewer", "dict", "Stone Web viewer plugin"),
        ("OHIF", "dict", "OHIF plugin"),
        ("WebViewer", "dict", "Web viewer plugin"),
        ("Gdcm", "dict", "GDCM plugin"),
        ("ServeFolders", "dict", "serve folders plugin"),
        ("AwsS3Storage", "dict", "AWS S3 storage plugin"),
        ("AzureBlobStorage", "dict", "Azure Blob storage plugin"),
        ("GoogleCloudStorage", "dict", "Google Cloud storage plugin"),
        ("Indexer", "dict", "folder indexer plugin"),
        ("MultitenantDicom", "dict", "multitenant DICOM plugin"),
        ("VolView", "dict", "VolView plugin"),
    )
))

OPTIONS: dict[str, Option] = {o.name: o for o in (*_OPTIONS, *_PLUGIN_SECTIONS)}
OPTIONS["DicomWeb"] = dataclasses.replace(OPTIONS["DicomWeb"], validator=_dicomweb_section)  # dicomweb/settings.py
OPTIONS["Python"] = dataclasses.replace(OPTIONS["Python"], validator=_python_section)  # plugins/settings.py
OPTIONS["PostgreSQL"] = dataclasses.replace(OPTIONS["PostgreSQL"], validator=_postgresql_section)  # index/
OPTIONS["AwsS3Storage"] = dataclasses.replace(OPTIONS["AwsS3Storage"], validator=_s3_section)  # storage/s3_settings.py
SECTIONS: tuple[str, ...] = tuple(dict.fromkeys(o.section for o in _OPTIONS))


def check_together(values: dict[str, Any]) -> None:
    """Checks that involve several options (`values` holds the options that are set, checked)."""
    def value(name: str) -> Any:
        return values[name] if name in values else OPTIONS[name].default_value()

    if value("CheckRevisions") and not value("StoreMD5ForAttachments"):
        raise ConfigurationError('Bad value for the configuration option "CheckRevisions": revisions need '
                                 '"StoreMD5ForAttachments" to be true')
