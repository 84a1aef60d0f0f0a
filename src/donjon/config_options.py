"""Every configuration option Donjon knows: Orthanc's names, defaults, types and a short comment.

This table drives validation at start-up, `--config=FILE` (the documented sample) and defaults.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from .registry import ConfigurationError


@dataclass(frozen=True)
class Option:
    name: str
    default: Any
    kind: str  # bool, int, uint, float, str, list, dict, str-or-list, any
    doc: str
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    in_sample: bool = True

    def default_value(self) -> Any:
        return copy.deepcopy(self.default)

    def check(self, value: Any) -> Any:
        """The value if it has the right type (ints given as strings are accepted, as in Orthanc)."""
        kind = self.kind
        if kind == "any":
            return value
        if kind == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            raise self._error(value, "a Boolean (true or false)")
        if kind in ("int", "uint"):
            if isinstance(value, bool):
                raise self._error(value, "an integer")
            if isinstance(value, str):
                try:
                    value = int(value.strip())
                except ValueError:
                    raise self._error(value, "an integer") from None
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if not isinstance(value, int):
                raise self._error(value, "an integer")
            minimum = 0 if kind == "uint" and self.minimum is None else self.minimum
            if minimum is not None and value < minimum:
                raise self._error(value, f"an integer >= {minimum}")
            return value
        if kind == "float":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise self._error(value, "a number")
            return float(value)
        if kind == "str":
            if not isinstance(value, str):
                raise self._error(value, "a string")
            if self.choices and value not in self.choices:
                raise self._error(value, "one of " + ", ".join(self.choices))
            return value
        if kind == "list":
            if not isinstance(value, list):
                raise self._error(value, "a JSON array")
            return value
        if kind == "dict":
            if not isinstance(value, dict):
                raise self._error(value, "a JSON object")
            return value
        if kind == "str-or-list":
            if isinstance(value, str):
                return [value]
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return value
            raise self._error(value, "a string or an array of strings")
        raise AssertionError(kind)

    def _error(self, value: Any, expected: str) -> ConfigurationError:
        shown = repr(value)
        if len(shown) > 60:
            shown = shown[:57] + "..."
        return ConfigurationError(f'Bad value for the configuration option "{self.name}": expected {expected}, '
                                  f"got {shown}")


_ALL_SYNTAXES = ["1.2.840.10008.1.*"]

_OPTIONS: tuple[Option, ...] = (
    # -- general ---------------------------------------------------------------------------------
    Option("Name", "", "str", "Name of this server, shown by /system and the Explorer."),
    Option("StorageDirectory", "OrthancStorage", "str",
           "Folder of the stored files (relative paths are relative to the configuration)."),
    Option("IndexDirectory", None, "any", "Folder of the SQLite index; defaults to StorageDirectory."),
    Option("TemporaryDirectory", None, "any", "Folder for large temporary files (default: the system's).",
           in_sample=False),
    Option("StorageCompression", False, "bool", "Compress new attachments with zlib (Orthanc's file format)."),
    Option("StorageCompressionLevel", 6, "int",
           "zlib level used when StorageCompression is on (Donjon extension, 1..9).", minimum=1),
    Option("MaximumStorageSize", 0, "uint", "Maximum size of the storage in MB (0 = no limit)."),
    Option("MaximumPatientCount", 0, "uint", "Maximum number of patients (0 = no limit)."),
    Option("MaximumStorageMode", "Recycle", "str",
           'What to do when a limit is reached: "Recycle" the oldest patients or "Reject" new ones.'),
    Option("MaximumStorageCacheSize", 128, "uint", "Size in MB of the in-memory cache of recent files."),
    Option("LuaScripts", [], "list", "Lua scripts (not supported by Donjon; use Python plugins)."),
    Option("LuaHeartBeatPeriod", 0, "uint", "Period of the Lua heart beat, in seconds.", in_sample=False),
    Option("Plugins", [], "list", "Plugins to load (shared libraries are not supported by Donjon)."),
    Option("ConcurrentJobs", 2, "uint", "Number of jobs that run at the same time (0 = number of cores)."),
    Option("JobsEngineThreadsCount", {"ResourceModification": 1}, "dict",
           "Threads used inside some jobs.", in_sample=False),
    Option("HttpServerEnabled", True, "bool", "Serve the REST API over HTTP."),
    Option("OrthancExplorerEnabled", True, "bool", "Serve the web user interface."),
    Option("HttpPort", 8042, "uint", "Port of the HTTP server."),
    Option("HttpDescribeErrors", True, "bool", "Answer HTTP errors with a JSON description."),
    Option("HttpCompressionEnabled", False, "bool", "Gzip large textual answers when the client accepts it."),
    Option("WebDavEnabled", True, "bool", "Serve the WebDAV view of the storage (not yet in Donjon)."),
    Option("WebDavDeleteAllowed", False, "bool", "Allow deletions through WebDAV."),
    Option("WebDavUploadAllowed", True, "bool", "Allow uploads through WebDAV."),
    # -- DICOM server ------------------------------------------------------------------------------
    Option("DicomServerEnabled", True, "bool", "Run the DICOM server."),
    Option("DicomAet", "ORTHANC", "str", "Application entity title of this server."),
    Option("DicomCheckCalledAet", False, "bool", "Refuse associations whose called AET is not DicomAet."),
    Option("DicomPort", 4242, "uint", "Port of the DICOM server."),
    Option("DefaultEncoding", "Latin1", "str", "Character set of DICOM files that do not declare one."),
    Option("AcceptedTransferSyntaxes", _ALL_SYNTAXES, "str-or-list",
           "Transfer syntaxes the DICOM server accepts (wildcards allowed)."),
    Option("DeflatedTransferSyntaxAccepted", True, "bool", "Legacy switch for deflated syntaxes.",
           in_sample=False),
    Option("JpegTransferSyntaxAccepted", True, "bool", "Legacy switch for JPEG syntaxes.", in_sample=False),
    Option("JpegLosslessTransferSyntaxAccepted", True, "bool", "Legacy switch.", in_sample=False),
    Option("JpipTransferSyntaxAccepted", True, "bool", "Legacy switch.", in_sample=False),
    Option("Jpeg2000TransferSyntaxAccepted", True, "bool", "Legacy switch.", in_sample=False),
    Option("MpegTransferSyntaxAccepted", True, "bool", "Legacy switch.", in_sample=False),
    Option("RleTransferSyntaxAccepted", True, "bool", "Legacy switch.", in_sample=False),
    Option("UnknownSopClassAccepted", False, "bool", "Accept C-STORE of SOP classes that are not storage classes."),
    Option("DicomScpTimeout", 30, "uint", "Seconds of inactivity before an incoming association is closed."),
    # -- security ------------------------------------------------------------------------------------
    Option("RemoteAccessAllowed", False, "bool", "Serve clients other than localhost."),
    Option("SslEnabled", False, "bool", "Serve HTTPS."),
    Option("SslCertificate", "certificate.pem", "str", "PEM file with the certificate and the private key."),
    Option("SslMinimumProtocolVersion", 4, "uint", "Minimum TLS version (4 = TLS 1.2).", in_sample=False),
    Option("SslCiphersAccepted", [], "list", "Accepted TLS ciphers.", in_sample=False),
    Option("SslVerifyPeers", False, "bool", "Require client certificates.", in_sample=False),
    Option("SslTrustedClientCertificates", "trustedClientCertificates.pem", "str",
           "Trusted client certificates.", in_sample=False),
    Option("AuthenticationEnabled", None, "any",
           "HTTP Basic authentication; when unset it is on exactly when RemoteAccessAllowed is true."),
    Option("RegisteredUsers", {}, "dict", 'Users of the HTTP API: {"user": "password"}.'),
    Option("DicomTlsEnabled", False, "bool", "DICOM over TLS.", in_sample=False),
    Option("DicomTlsCertificate", "", "str", "DICOM TLS certificate.", in_sample=False),
    Option("DicomTlsPrivateKey", "", "str", "DICOM TLS key.", in_sample=False),
    Option("DicomTlsTrustedCertificates", "", "str", "DICOM TLS trusted certificates.", in_sample=False),
    Option("DicomTlsRemoteCertificateRequired", True, "bool", "DICOM TLS client certificates.", in_sample=False),
    Option("DicomTlsMinimumProtocolVersion", 0, "uint", "DICOM TLS minimum version.", in_sample=False),
    Option("DicomTlsCiphersAccepted", [], "list", "DICOM TLS ciphers.", in_sample=False),
    Option("DicomAlwaysAllowEcho", True, "bool", "Answer C-ECHO from any modality."),
    Option("DicomAlwaysAllowStore", True, "bool", "Accept C-STORE from any modality."),
    Option("DicomAlwaysAllowFind", False, "bool", "Answer C-FIND from any modality."),
    Option("DicomAlwaysAllowFindWorklist", False, "bool", "Answer worklist C-FIND from any modality."),
    Option("DicomAlwaysAllowGet", False, "bool", "Answer C-GET from any modality."),
    Option("DicomAlwaysAllowMove", False, "bool", "Answer C-MOVE from any modality."),
    Option("DicomCheckModalityHost", False, "bool", "Check the IP address of known modalities."),
    # -- network peers ------------------------------------------------------------------------------
    Option("DicomModalities", {}, "dict", "Known DICOM modalities."),
    Option("DicomModalitiesInDatabase", False, "bool", "Keep modalities defined over REST in the index."),
    Option("DicomEchoChecksFind", False, "bool", "C-ECHO also checks C-FIND.", in_sample=False),
    Option("DicomScuTimeout", 10, "uint", "Timeout of outgoing DICOM associations, in seconds."),
    Option("DicomScuPreferredTransferSyntax", "1.2.840.10008.1.2.1", "str",
           "Preferred syntax of outgoing C-STORE.", in_sample=False),
    Option("DicomThreadsCount", 4, "uint", "Threads of the DICOM server."),
    Option("OrthancPeers", {}, "dict", "Other Orthanc-compatible servers reached over HTTP(S)."),
    Option("OrthancPeersInDatabase", False, "bool", "Keep peers defined over REST in the index."),
    Option("HttpProxy", "", "str", "Proxy for outgoing HTTP requests."),
    Option("HttpVerbose", False, "bool", "Log outgoing HTTP requests.", in_sample=False),
    Option("HttpTimeout", 60, "uint", "Timeout of outgoing HTTP requests, in seconds."),
    Option("HttpsVerifyPeers", True, "bool", "Check the certificates of HTTPS peers."),
    Option("HttpsCACertificates", "/etc/ssl/certs/ca-certificates.crt", "str",
           "CA certificates for HTTPS peers."),
    # -- advanced ---------------------------------------------------------------------------------
    Option("UserMetadata", {}, "dict", 'User-defined metadata: {"Name": 1024}.'),
    Option("UserContentType", {}, "dict", 'User-defined attachments: {"name": 1024} or {"name": [1025, "mime"]}.'),
    Option("StableAge", 60, "int", "Seconds without new instance before a series/study/patient is stable."),
    Option("StrictAetComparison", False, "bool", "Case-sensitive comparison of AETs."),
    Option("StoreMD5ForAttachments", True, "bool", "Compute the MD5 of every attachment."),
    Option("LimitFindResults", 0, "uint", "Maximum number of answers of a find at patient/study/series level."),
    Option("LimitFindInstances", 0, "uint", "Maximum number of answers of a find at instance level."),
    Option("LimitJobs", 10, "uint", "Legacy.", in_sample=False),
    Option("LogExportedResources", False, "bool", "Record what is sent to modalities in /exports."),
    Option("KeepAlive", True, "bool", "HTTP keep-alive."),
    Option("KeepAliveTimeout", 1, "uint", "HTTP keep-alive timeout, in seconds."),
    Option("TcpNoDelay", True, "bool", "Disable Nagle's algorithm on HTTP connections."),
    Option("HttpThreadsCount", 50, "uint", "Threads serving HTTP requests (blocking work)."),
    Option("StoreDicom", True, "bool", "Store the DICOM files (false keeps only the index)."),
    Option("DicomAssociationCloseDelay", 5, "uint", "Seconds before an idle outgoing association is closed."),
    Option("QueryRetrieveSize", 100, "uint", "Number of query/retrieve results kept in memory."),
    Option("CaseSensitivePN", False, "bool", "Case-sensitive matching of person names in C-FIND."),
    Option("LoadPrivateDictionary", True, "bool", "Load the private DICOM dictionary.", in_sample=False),
    Option("Dictionary", {}, "dict", "Additional DICOM dictionary entries.", in_sample=False),
    Option("ExternalDictionaries", [], "list", "External DICOM dictionaries.", in_sample=False),
    Option("SynchronousCMove", True, "bool", "Run C-MOVE SCP requests synchronously."),
    Option("JobsHistorySize", 10, "uint", "Number of finished jobs kept in the history."),
    Option("SaveJobs", True, "bool", "Keep the jobs in the index so that they survive a restart."),
    Option("OverwriteInstances", False, "bool", "Replace an instance that is received again."),
    Option("MediaArchiveSize", 1, "uint", "Number of archives kept for asynchronous downloads."),
    Option("StorageAccessOnFind", "Always", "str", "When find may read files: Always, Answers or Never.",
           choices=("Always", "Answers", "Never")),
    Option("MetricsEnabled", True, "bool", "Collect metrics for /tools/metrics-prometheus."),
    Option("ExecuteLuaEnabled", False, "bool", "Allow /tools/execute-script."),
    Option("RestApiWriteToFileSystemEnabled", False, "bool", "Allow REST routes that write to the disk.",
           in_sample=False),
    Option("HttpRequestTimeout", 30, "uint", "Timeout of incoming HTTP requests, in seconds."),
    Option("DefaultPrivateCreator", "", "str", "Private creator used when none is given."),
    Option("StorageCommitmentReportsSize", 100, "uint", "Number of storage commitment reports kept."),
    Option("TranscodeDicomProtocol", True, "bool", "Transcode when a modality does not accept a syntax."),
    Option("BuiltinDecoderTranscoderOrder", "After", "str", "Order of the built-in decoders.",
           in_sample=False),
    Option("IngestTranscoding", None, "any", "Transcode incoming instances to this syntax.", in_sample=False),
    Option("IngestTranscodingOfUncompressed", True, "bool", "Apply IngestTranscoding to uncompressed files.",
           in_sample=False),
    Option("IngestTranscodingOfCompressed", True, "bool", "Apply IngestTranscoding to compressed files.",
           in_sample=False),
    Option("DicomLossyTranscodingQuality", 90, "uint", "Quality of lossy transcoding.", in_sample=False),
    Option("SyncStorageArea", True, "bool", "fsync every stored file before acknowledging it."),
    Option("MallocArenaMax", 5, "uint", "Malloc arenas (ignored by Donjon).", in_sample=False),
    Option("DeidentifyLogs", True, "bool", "Remove patient data from the logs."),
    Option("DeidentifyLogsDicomVersion", "2023b", "str", "Profile of the de-identification of logs.",
           in_sample=False),
    Option("MaximumPduLength", 16384, "uint", "Maximum PDU length of the DICOM server."),
    Option("DatabaseServerIdentifier", "", "str", "Identifier of this server in a shared database.",
           in_sample=False),
    Option("CheckRevisions", False, "bool", "Require If-Match headers to change metadata and attachments."),
    Option("SynchronousZipStream", True, "bool", "Stream synchronous archives.", in_sample=False),
    Option("ZipLoaderThreads", 0, "uint", "Threads that read files for archives.", in_sample=False),
    Option("ExtraMainDicomTags", {}, "dict", "Additional main tags per level.", in_sample=False),
    Option("Warnings", {}, "dict", "Switches for start-up warnings.", in_sample=False),
    Option("Verbose", False, "bool", "Verbose logs.", in_sample=False),
    Option("Trace", False, "bool", "Trace logs.", in_sample=False),
    Option("HouseKeeper", {}, "dict", "Housekeeper plugin options.", in_sample=False),
)

OPTIONS: dict[str, Option] = {o.name: o for o in _OPTIONS}
