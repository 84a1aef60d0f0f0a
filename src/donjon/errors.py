"""Orthanc's error codes, in one table, and the exception that carries them.

Every face (REST, DICOM, command line) turns an `OrthancError` into its own kind of answer; the
table below is the single place where a code gets its description and its HTTP status.
"""

from __future__ import annotations

from enum import IntEnum


class ErrorCode(IntEnum):
    INTERNAL_ERROR = -1
    SUCCESS = 0
    PLUGIN = 1
    NOT_IMPLEMENTED = 2
    PARAMETER_OUT_OF_RANGE = 3
    NOT_ENOUGH_MEMORY = 4
    BAD_PARAMETER_TYPE = 5
    BAD_SEQUENCE_OF_CALLS = 6
    INEXISTENT_ITEM = 7
    BAD_REQUEST = 8
    NETWORK_PROTOCOL = 9
    SYSTEM_COMMAND = 10
    DATABASE = 11
    URI_SYNTAX = 12
    INEXISTENT_FILE = 13
    CANNOT_WRITE_FILE = 14
    BAD_FILE_FORMAT = 15
    TIMEOUT = 16
    UNKNOWN_RESOURCE = 17
    INCOMPATIBLE_DATABASE_VERSION = 18
    FULL_STORAGE = 19
    CORRUPTED_FILE = 20
    INEXISTENT_TAG = 21
    READ_ONLY = 22
    INCOMPATIBLE_IMAGE_FORMAT = 23
    INCOMPATIBLE_IMAGE_SIZE = 24
    SHARED_LIBRARY = 25
    UNKNOWN_PLUGIN_SERVICE = 26
    UNKNOWN_DICOM_TAG = 27
    BAD_JSON = 28
    UNAUTHORIZED = 29
    BAD_FONT = 30
    DATABASE_PLUGIN = 31
    STORAGE_AREA_PLUGIN = 32
    EMPTY_REQUEST = 33
    NOT_ACCEPTABLE = 34
    NULL_POINTER = 35
    DATABASE_UNAVAILABLE = 36
    CANCELED_JOB = 37
    BAD_GEOMETRY = 38
    SSL_INITIALIZATION = 39
    DISCONTINUED_ABI = 40
    BAD_RANGE = 41
    DATABASE_CANNOT_SERIALIZE = 42
    REVISION = 43
    MAIN_DICOM_TAGS_MULTIPLY_DEFINED = 44
    FORBIDDEN_ACCESS = 45
    DUPLICATE_RESOURCE = 46
    HTTP_PORT_IN_USE = 2003
    DICOM_PORT_IN_USE = 2004
    CANNOT_STORE_INSTANCE = 2018
    CREATE_DICOM_NOT_STRING = 2019
    CREATE_DICOM_OVERRIDE_TAG = 2020
    CREATE_DICOM_USE_CONTENT = 2021
    CREATE_DICOM_NO_PAYLOAD = 2022
    CREATE_DICOM_USE_DATA_URI_SCHEME = 2023
    CREATE_DICOM_BAD_PARENT = 2024
    CREATE_DICOM_PARENT_IS_INSTANCE = 2025
    CREATE_DICOM_PARENT_ENCODING = 2026
    UNKNOWN_MODALITY = 2027
    BAD_JOB_ORDERING = 2028
    JSON_TO_LUA_TABLE = 2029
    CANNOT_CREATE_LUA = 2030
    CANNOT_EXECUTE_LUA = 2031
    LUA_ALREADY_EXECUTED = 2032
    LUA_BAD_OUTPUT = 2033
    NOT_LUA_PREDICATE = 2034
    LUA_RETURNS_NO_STRING = 2035
    STORAGE_AREA_ALREADY_REGISTERED = 2036
    DATABASE_BACKEND_ALREADY_REGISTERED = 2037
    DATABASE_NOT_INITIALIZED = 2038
    SSL_DISABLED = 2039
    CANNOT_ORDER_SLICES = 2040
    NO_WORKLIST_HANDLER = 2041
    ALREADY_EXISTING_TAG = 2042
    NO_STORAGE_COMMITMENT_HANDLER = 2043
    NO_C_GET_HANDLER = 2044
    UNSUPPORTED_MEDIA_TYPE = 3000


# code -> (symbolic name as Orthanc's --errors prints it, description, HTTP status)
_TABLE: dict[int, tuple[str, str, int]] = {
    -1: ("InternalError", "Internal error", 500),
    0: ("Success", "Success", 200),
    1: ("Plugin", "Error encountered within the plugin engine", 500),
    2: ("NotImplemented", "Not implemented yet", 500),
    3: ("ParameterOutOfRange", "Parameter out of range", 400),
    4: ("NotEnoughMemory", "The server hosting Orthanc is running out of memory", 500),
    5: ("BadParameterType", "Bad type for a parameter", 400),
    6: ("BadSequenceOfCalls", "Bad sequence of calls", 500),
    7: ("InexistentItem", "Accessing an inexistent item", 404),
    8: ("BadRequest", "Bad request", 400),
    9: ("NetworkProtocol", "Error in the network protocol", 500),
    10: ("SystemCommand", "Error while calling a system command", 500),
    11: ("Database", "Error with the database engine", 500),
    12: ("UriSyntax", "Badly formatted URI", 400),
    13: ("InexistentFile", "Inexistent file", 404),
    14: ("CannotWriteFile", "Cannot write to file", 500),
    15: ("BadFileFormat", "Bad file format", 400),
    16: ("Timeout", "Timeout", 500),
    17: ("UnknownResource", "Unknown resource", 404),
    18: ("IncompatibleDatabaseVersion", "Incompatible version of the database", 500),
    19: ("FullStorage", "The file storage is full", 500),
    20: ("CorruptedFile", "Corrupted file (e.g. inconsistent MD5 hash)", 500),
    21: ("InexistentTag", "Inexistent tag", 404),
    22: ("ReadOnly", "Cannot modify a read-only data structure", 500),
    23: ("IncompatibleImageFormat", "Incompatible format of the images", 500),
    24: ("IncompatibleImageSize", "Incompatible size of the images", 500),
    25: ("SharedLibrary", "Error while using a shared library (plugin)", 500),
    26: ("UnknownPluginService", "Plugin invoking an unknown service", 500),
    27: ("UnknownDicomTag", "Unknown DICOM tag", 500),
    28: ("BadJson", "Cannot parse a JSON document", 400),
    29: ("Unauthorized", "Bad credentials were provided to an HTTP request", 401),
    30: ("BadFont", "Badly formatted font file", 500),
    31: ("DatabasePlugin", "The plugin implementing a custom database back-end does not fulfill the proper interface", 500),
    32: ("StorageAreaPlugin", "Error in the plugin implementing a custom storage area", 500),
    33: ("EmptyRequest", "The request is empty", 500),
    34: ("NotAcceptable", "Cannot send a response which is acceptable according to the Accept HTTP header", 406),
    35: ("NullPointer", "Cannot handle a NULL pointer", 500),
    36: ("DatabaseUnavailable", "The database is currently not available (probably a transient situation)", 503),
    37: ("CanceledJob", "This job was canceled", 500),
    38: ("BadGeometry", "Geometry error encountered in Stone", 500),
    39: ("SslInitialization", "Cannot initialize SSL encryption, check out your certificates", 500),
    40: ("DiscontinuedAbi", "Calling a function that has been removed from the Orthanc Framework", 500),
    41: ("BadRange", "Incorrect range request", 416),
    42: ("DatabaseCannotSerialize", "Database could not serialize access due to concurrent update, the transaction should be retried", 503),
    43: ("Revision", "A bad revision number was provided, which might indicate conflict between multiple writers", 409),
    44: ("MainDicomTagsMultiplyDefined", "A main DICOM Tag has been defined multiple times for the same resource level", 500),
    45: ("ForbiddenAccess", "Access to a resource is forbidden", 403),
    46: ("DuplicateResource", "Duplicate resource", 409),
    1000: ("SQLiteNotOpened", "SQLite: The database is not opened", 500),
    1001: ("SQLiteAlreadyOpened", "SQLite: Connection is already open", 500),
    1002: ("SQLiteCannotOpen", "SQLite: Unable to open the database", 500),
    1003: ("SQLiteStatementAlreadyUsed", "SQLite: This cached statement is already being referred to", 500),
    1004: ("SQLiteExecute", "SQLite: Cannot execute a command", 500),
    1005: ("SQLiteRollbackWithoutTransaction", "SQLite: Rolling back a nonexistent transaction (have you called Begin()?)", 500),
    1006: ("SQLiteCommitWithoutTransaction", "SQLite: Committing a nonexistent transaction", 500),
    1007: ("SQLiteRegisterFunction", "SQLite: Unable to register a function", 500),
    1008: ("SQLiteFlush", "SQLite: Unable to flush the database", 500),
    1009: ("SQLiteCannotRun", "SQLite: Cannot run a cached statement", 500),
    1010: ("SQLiteCannotStep", "SQLite: Cannot step over a cached statement", 500),
    1011: ("SQLiteBindOutOfRange", "SQLite: Bing a value while out of range (serious error)", 500),
    1012: ("SQLitePrepareStatement", "SQLite: Cannot prepare a cached statement", 500),
    1013: ("SQLiteTransactionAlreadyStarted", "SQLite: Beginning the same transaction twice", 500),
    1014: ("SQLiteTransactionCommit", "SQLite: Failure when committing the transaction", 500),
    1015: ("SQLiteTransactionBegin", "SQLite: Cannot start a transaction", 500),
    2000: ("DirectoryOverFile", "The directory to be created is already occupied by a regular file", 500),
    2001: ("FileStorageCannotWrite", "Unable to create a subdirectory or a file in the file storage", 500),
    2002: ("DirectoryExpected", "The specified path does not point to a directory", 500),
    2003: ("HttpPortInUse", "The TCP port of the HTTP server is privileged or already in use", 500),
    2004: ("DicomPortInUse", "The TCP port of the DICOM server is privileged or already in use", 500),
    2005: ("BadHttpStatusInRest", "This HTTP status is not allowed in a REST API", 500),
    2006: ("RegularFileExpected", "The specified path does not point to a regular file", 500),
    2007: ("PathToExecutable", "Unable to get the path to the executable", 500),
    2008: ("MakeDirectory", "Cannot create a directory", 500),
    2009: ("BadApplicationEntityTitle", "An application entity title (AET) cannot be empty or be longer than 16 characters", 500),
    2010: ("NoCFindHandler", "No request handler factory for DICOM C-FIND SCP", 500),
    2011: ("NoCMoveHandler", "No request handler factory for DICOM C-MOVE SCP", 500),
    2012: ("NoCStoreHandler", "No request handler factory for DICOM C-STORE SCP", 500),
    2013: ("NoApplicationEntityFilter", "No application entity filter", 500),
    2014: ("NoSopClassOrInstance", "DicomUserConnection: Unable to find the SOP class and instance", 500),
    2015: ("NoPresentationContext", "DicomUserConnection: No acceptable presentation context for modality", 500),
    2016: ("DicomFindUnavailable", "DicomUserConnection: The C-FIND command is not supported by the remote SCP", 500),
    2017: ("DicomMoveUnavailable", "DicomUserConnection: The C-MOVE command is not supported by the remote SCP", 500),
    2018: ("CannotStoreInstance", "Cannot store an instance", 500),
    2019: ("CreateDicomNotString", "Only string values are supported when creating DICOM instances", 400),
    2020: ("CreateDicomOverrideTag", "Trying to override a value inherited from a parent module", 400),
    2021: ("CreateDicomUseContent", "Use \"Content\" to inject an image into a new DICOM instance", 400),
    2022: ("CreateDicomNoPayload", "No payload is present for one instance in the series", 400),
    2023: ("CreateDicomUseDataUriScheme", "The payload of the DICOM instance must be specified according to Data URI scheme", 400),
    2024: ("CreateDicomBadParent", "Trying to attach a new DICOM instance to an inexistent resource", 400),
    2025: ("CreateDicomParentIsInstance", "Trying to attach a new DICOM instance to an instance (must be a series, study or patient)", 400),
    2026: ("CreateDicomParentEncoding", "Unable to get the encoding of the parent resource", 500),
    2027: ("UnknownModality", "Unknown modality", 500),
    2028: ("BadJobOrdering", "Bad ordering of filters in a job", 500),
    2029: ("JsonToLuaTable", "Cannot convert the given JSON object to a Lua table", 500),
    2030: ("CannotCreateLua", "Cannot create the Lua context", 500),
    2031: ("CannotExecuteLua", "Cannot execute a Lua command", 500),
    2032: ("LuaAlreadyExecuted", "Arguments cannot be pushed after the Lua function is executed", 500),
    2033: ("LuaBadOutput", "The Lua function does not give the expected number of outputs", 500),
    2034: ("NotLuaPredicate", "The Lua function is not a predicate (only true/false outputs allowed)", 500),
    2035: ("LuaReturnsNoString", "The Lua function does not return a string", 500),
    2036: ("StorageAreaAlreadyRegistered", "Another plugin has already registered a custom storage area", 500),
    2037: ("DatabaseBackendAlreadyRegistered", "Another plugin has already registered a custom database back-end", 500),
    2038: ("DatabaseNotInitialized", "Plugin trying to call the database during its initialization", 500),
    2039: ("SslDisabled", "Orthanc has been built without SSL support", 500),
    2040: ("CannotOrderSlices", "Unable to order the slices of the series", 500),
    2041: ("NoWorklistHandler", "No request handler factory for DICOM C-Find Modality SCP", 500),
    2042: ("AlreadyExistingTag", "Cannot override the value of a tag that already exists", 500),
    2043: ("NoStorageCommitmentHandler", "No request handler factory for DICOM N-ACTION SCP (storage commitment)", 500),
    2044: ("NoCGetHandler", "No request handler factory for DICOM C-GET SCP", 500),
    3000: ("UnsupportedMediaType", "Unsupported media type", 415),
}

HTTP_REASONS: dict[int, str] = {
    200: "OK", 202: "Accepted", 204: "No Content", 206: "Partial Content",
    301: "Moved Permanently", 302: "Found", 304: "Not Modified", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable", 409: "Conflict",
    413: "Request Entity Too Large", 415: "Unsupported Media Type",
    416: "Requested Range Not Satisfiable", 422: "Unprocessable Entity", 431: "Request Header Fields Too Large",
    500: "Internal Server Error", 501: "Not Implemented",
    503: "Service Unavailable", 507: "Insufficient Storage",
}


def describe(code: int) -> str:
    entry = _TABLE.get(int(code))
    return entry[1] if entry else "Internal error"


def http_status_of(code: int) -> int:
    entry = _TABLE.get(int(code))
    return entry[2] if entry else 500


def all_errors() -> list[tuple[int, str, str, int]]:
    """(code, name, description, http status) of every code, for `--errors`."""
    return [(code, name, desc, status) for code, (name, desc, status) in sorted(_TABLE.items())]


class OrthancError(Exception):
    """An error with an Orthanc code; `http_status` overrides the table when set (e.g. 507)."""

    def __init__(self, code: ErrorCode | int, details: str | None = None, http_status: int | None = None):
        self.code = int(code)
        self.details = details
        self.http_status = http_status if http_status is not None else http_status_of(self.code)
        super().__init__(details or describe(self.code))

    @property
    def description(self) -> str:
        return describe(self.code)


class EmptyAnswer(Exception):
    """A failure Orthanc answers with a bare status and no body (e.g. 403 on a core key)."""

    def __init__(self, status: int):
        self.status = status
        super().__init__(f"HTTP {status}")
