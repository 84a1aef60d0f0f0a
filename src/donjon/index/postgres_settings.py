"""The `PostgreSQL` configuration section, with the option names of Orthanc's PostgreSQL plugin.

`EnableIndex: true` puts the index in PostgreSQL. Either `ConnectionUri` or Host/Port/Database/
Username/Password (+ `EnableSsl`) say where. `Lock` (default true) keeps the database to one process;
set it to false to run several Donjon processes on one database. The password is never logged: what is
shown of a connection is `describe()`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..registry import ConfigurationError

_BOOLS = ("EnableIndex", "EnableStorage", "EnableSsl", "Lock", "EnableVerboseLogs")
_STRINGS = ("Host", "Database", "Username", "Password", "ConnectionUri", "TransactionMode")
_UINTS = ("Port", "IndexConnectionsCount", "MaximumConnectionRetries", "ConnectionRetryInterval",
          "JobsLeaseDuration")


@dataclass(frozen=True)
class PostgresSettings:
    enable_index: bool = False
    host: str = "localhost"
    port: int = 5432
    database: str = ""
    username: str = ""
    password: str = ""
    uri: str = ""
    ssl: bool = False
    lock: bool = True
    connections: int = 50
    max_retries: int = 10
    retry_interval: int = 5
    enable_storage: bool = False  # accepted, ignored: the files stay in the storage area
    lease: int = 10  # seconds a job stays with a process that stopped renewing it (Donjon's own option)

    def conninfo(self) -> str:
        from psycopg.conninfo import make_conninfo

        if self.uri:
            return make_conninfo(self.uri, application_name="donjon")
        params: dict[str, Any] = {"host": self.host, "port": self.port, "sslmode": "require" if self.ssl else "disable",
                                  "application_name": "donjon", "connect_timeout": 10}
        if self.database:
            params["dbname"] = self.database
        if self.username:
            params["user"] = self.username
        if self.password:
            params["password"] = self.password
        return make_conninfo("", **params)

    def describe(self) -> str:
        """Where the index is, without the password (for the logs and the errors)."""
        if self.uri:
            from psycopg.conninfo import conninfo_to_dict

            try:
                parts = conninfo_to_dict(self.uri)
            except Exception:
                return "the PostgreSQL server of ConnectionUri"
            return f"{parts.get('host', 'localhost')}:{parts.get('port', 5432)}/{parts.get('dbname', '')}"
        return f"{self.host}:{self.port}/{self.database}"


def _bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ConfigurationError(f'Bad value for the configuration option "PostgreSQL.{name}": expected a Boolean')


def _uint(name: str, value: Any) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError(f'Bad value for the configuration option "PostgreSQL.{name}": '
                                 "expected a non-negative integer")
    return value


def validate(section: Any) -> PostgresSettings:
    """The settings of a `PostgreSQL` section (None: disabled); raises `ConfigurationError`."""
    if section is None:
        return PostgresSettings()
    if not isinstance(section, dict):
        raise ConfigurationError('Bad value for the configuration option "PostgreSQL": expected an object')
    for key, value in section.items():
        if key in _BOOLS:
            _bool(key, value)
        elif key in _UINTS:
            _uint(key, value)
        elif key in _STRINGS and not isinstance(value, str):
            raise ConfigurationError(f'Bad value for the configuration option "PostgreSQL.{key}": expected a string')
    get = section.get
    connections = _uint("IndexConnectionsCount", get("IndexConnectionsCount", 50))
    if connections < 1:
        raise ConfigurationError('"PostgreSQL.IndexConnectionsCount" must be at least 1')
    return PostgresSettings(
        enable_index=_bool("EnableIndex", get("EnableIndex", False)),
        host=str(get("Host", "localhost")), port=_uint("Port", get("Port", 5432)),
        database=str(get("Database", "")), username=str(get("Username", "")), password=str(get("Password", "")),
        uri=str(get("ConnectionUri", "")), ssl=_bool("EnableSsl", get("EnableSsl", False)),
        lock=_bool("Lock", get("Lock", True)), connections=connections,
        max_retries=_uint("MaximumConnectionRetries", get("MaximumConnectionRetries", 10)),
        retry_interval=_uint("ConnectionRetryInterval", get("ConnectionRetryInterval", 5)),
        enable_storage=_bool("EnableStorage", get("EnableStorage", False)),
        lease=max(2, _uint("JobsLeaseDuration", get("JobsLeaseDuration", 10))))


def check_section(option: Any, value: Any) -> Any:
    """Validator of the `PostgreSQL` option in `config_options` (fails early on a typo'd value)."""
    validate(value)
    return value
