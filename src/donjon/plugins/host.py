"""The Python plugin host: the loaded script, what it registered, and the hooks the core calls.

Created only when a script is configured; the core then finds it as `ctx.plugins` (store, C-FIND,
C-MOVE) and `app.plugins` (HTTP), and otherwise pays one `is None` test. The script is imported at
start-up, before the server context exists (so that `RegisterStorageArea` can take effect), with the
module `orthanc` in `sys.modules`; as in Orthanc, calling the REST API from the import itself is
`DatabaseNotInitialized`, the script's folder is on `sys.path` and the module is named after its file.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import logging
import os
import sys
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..api.http import Request, Response
from ..core.store import StoreOrigin, StoreResult
from ..dicom.parse import parse_instance
from ..errors import ErrorCode, OrthancError
from ..registry import Level, Origin
from .changes import ChangeDispatcher
from .dicom_scp import run_find, run_move
from .enums import NO_RESOURCE, ORIGIN_TO_SDK, ChangeType
from .exceptions import OrthancException
from .guard import CallbackRunner, Failed, log_traceback
from .inprocess import InProcessRest, as_body, build_request, error_of_status, in_plugin_call
from .instance import DicomInstance
from .rest import PluginRoutes, filter_arguments
from .settings import PythonSettings
from .storage import PluginStorageArea

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from ..api.app import DonjonApp
    from ..config import Configuration
    from ..core.context import ServerContext

log = logging.getLogger("donjon.plugins")

PLUGIN_ID = "python"
DESCRIPTION = "Run Python scripts as Orthanc plugins"
_MODIFY, _DISCARD = 2, 3  # ReceivedInstanceAction
_DRAIN_TIMEOUT = 30.0


class PluginHost:
    def __init__(self, settings: PythonSettings, config: Configuration):
        self.settings = settings
        self.config = config
        self.runner = CallbackRunner(settings.callback_timeout)
        self.routes = PluginRoutes()
        self.rest = InProcessRest(lambda: self.app)
        self.ctx: ServerContext | None = None
        self.app: DonjonApp | None = None
        self.changes: ChangeDispatcher | None = None
        self.on_stored: Callable[..., Any] | None = None
        self.received: Callable[..., Any] | None = None
        self._received_takes_origin = True
        self.http_filter: Callable[..., Any] | None = None
        self.cstore_filter: Callable[..., Any] | None = None
        self.find_callback: Callable[..., Any] | None = None
        self.move_callback: Callable[..., Any] | None = None
        self.storage: PluginStorageArea | None = None
        self.tokens: set[str] = set()
        self.description = DESCRIPTION
        self.root_uri: str | None = None
        self.explorer_js: str | None = None  # ExtendOrthancExplorer(): the last call wins, as in Orthanc
        from .sdk import build_module
        self.module = build_module(self)

    # -- life cycle ------------------------------------------------------------------------------
    def load(self) -> bool:
        """Import the script; False (logged with its traceback) if it raised."""
        path = self.settings.script
        folder, name = os.path.dirname(path), os.path.splitext(os.path.basename(path))[0]
        log.warning("Registering plugin '%s' (version %s)", PLUGIN_ID, __version__)
        log.warning('Using Python script "%s.py" from directory: %s', name, folder)
        sys.modules["orthanc"] = self.module
        if folder not in sys.path:
            sys.path.insert(0, folder)
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except (Exception, SystemExit):
            log_traceback("script, during its installation")
            return False
        return True

    def attach(self, ctx: ServerContext, app: DonjonApp) -> None:
        """Serve this context (at start-up, and again after `/tools/reset`)."""
        self.ctx, self.app = ctx, app
        ctx.plugins = self
        app.plugins = self
        if self.changes is not None:
            self._subscribe(ctx)

    def _subscribe(self, ctx: ServerContext) -> None:
        assert self.changes is not None
        ctx.events.subscribe(self.changes.on_event)
        ctx.jobs.engine.listeners.append(self.changes.on_job)

    def started(self) -> None:
        if self.changes is not None:
            self.changes.push(ChangeType.ORTHANC_STARTED, NO_RESOURCE, "")  # type: ignore[attr-defined]

    def stopping(self) -> None:
        if self.changes is not None:
            self.changes.stop(_DRAIN_TIMEOUT)
            self.changes = None

    def close(self) -> None:
        self.runner.close()
        self.rest.close()

    def require_ctx(self) -> ServerContext:
        if self.ctx is None:
            raise OrthancException(ErrorCode.DATABASE_NOT_INITIALIZED)
        return self.ctx

    # -- registrations (one callback of each kind, as in Orthanc) ---------------------------------
    @staticmethod
    def _single(current: Any, callback: Any, what: str) -> None:
        if not callable(callback):
            raise ValueError(f"Expected a callback function to register one {what}")
        if current is not None:
            raise RuntimeError(f"Can only register one {what}")
        log.info("Registering one %s", what)

    def register_on_change(self, callback: Callable[..., Any]) -> None:
        self._single(self.changes, callback, "Python on-changes callback")
        self.changes = ChangeDispatcher(callback)
        if self.ctx is not None:
            self._subscribe(self.ctx)

    def register_on_stored(self, callback: Callable[..., Any]) -> None:
        self._single(self.on_stored, callback, "Python on-stored-instance callback")
        self.on_stored = callback

    def register_received(self, callback: Callable[..., Any]) -> None:
        self._single(self.received, callback, "Python received instance callback")
        self.received = callback
        self._received_takes_origin = _accepts_two_arguments(callback)

    def register_http_filter(self, callback: Callable[..., Any]) -> None:
        self._single(self.http_filter, callback, "Python incoming-http-request filter")
        self.http_filter = callback

    def register_cstore_filter(self, callback: Callable[..., Any]) -> None:
        self._single(self.cstore_filter, callback, "Python incoming CStore instance filter")
        self.cstore_filter = callback

    def register_find(self, callback: Callable[..., Any]) -> None:
        self._single(self.find_callback, callback, "Python C-FIND SCP callback")
        self.find_callback = callback

    def register_move(self, callback: Callable[..., Any]) -> None:
        self._single(self.move_callback, callback, "Python C-MOVE SCP callback")
        self.move_callback = callback

    def register_storage(self, create: Callable[..., Any], read: Callable[..., Any],
                         remove: Callable[..., Any]) -> None:
        if not (callable(create) and callable(read) and callable(remove)):
            raise ValueError("Expected three callback functions to register a custom storage area")
        if self.storage is not None:
            raise RuntimeError("Cannot register twice a custom storage area")
        if self.ctx is not None:
            raise OrthancException(ErrorCode.BAD_SEQUENCE_OF_CALLS,
                                   "A storage area must be registered while the script is imported")
        log.info("Registering a custom storage area in Python")
        self.storage = PluginStorageArea(create, read, remove)

    # -- ingest hooks (called by core.store) -------------------------------------------------------
    def store(self, ctx: ServerContext, data: bytes, origin: StoreOrigin,
              inner: Callable[[ServerContext, bytes, StoreOrigin], StoreResult]) -> StoreResult:
        if origin.origin == Origin.REST_API and in_plugin_call():
            origin = StoreOrigin(origin=Origin.PLUGINS)
        if self.received is not None:
            kept = self._apply_received(data, origin)
            if kept is None:
                log.info("A received instance has been discarded by the Python received instance callback")
                return StoreResult("FilteredOut", parse_instance(data, ctx.default_encoding).ids)
            data = kept
        if self.cstore_filter is not None and origin.origin == Origin.DICOM_PROTOCOL:
            status = self._apply_cstore_filter(ctx, data, origin)
            if status:
                result = StoreResult("FilteredOut", parse_instance(data, ctx.default_encoding).ids)
                result.dimse_status = status
                return result
        result = inner(ctx, data, origin)
        if self.on_stored is not None and result.status == "Success":
            instance_id = result.ids.instance
            try:
                self.runner.call("on-stored-instance callback", self.on_stored,
                                 DicomInstance(data, origin, ctx, instance_id), instance_id)
            except Failed:
                pass
        return result

    def _apply_received(self, data: bytes, origin: StoreOrigin) -> bytes | None:
        """The bytes to store (modified or not), None to discard; any failure keeps the instance as is."""
        assert self.received is not None
        args: tuple[Any, ...] = (data, ORIGIN_TO_SDK.get(origin.origin, 1))
        try:
            outcome = self.runner.call("received instance callback", self.received,
                                       *(args if self._received_takes_origin else args[:1]))
        except Failed:
            return data
        if not isinstance(outcome, tuple) or len(outcome) != 2 or not isinstance(outcome[0], int):
            log.error("The Python received instance callback has not returned a tuple (action, bytes)")
            return data
        action, modified = outcome
        if action == _DISCARD:
            return None
        if action != _MODIFY:
            return data
        if not isinstance(modified, bytes | bytearray | memoryview) or len(modified) == 0:
            log.error("The Python received instance callback asked to modify the instance without bytes")
            return data
        return bytes(modified)

    def _apply_cstore_filter(self, ctx: ServerContext, data: bytes, origin: StoreOrigin) -> int:
        """0 to store, else the DIMSE status the C-STORE is refused with."""
        assert self.cstore_filter is not None
        try:
            code = self.runner.call("incoming C-STORE instance filter", self.cstore_filter,
                                    DicomInstance(data, origin, ctx))
        except Failed:
            raise OrthancError(ErrorCode.PLUGIN, "The Python incoming C-STORE instance filter failed") from None
        if isinstance(code, bool) or not isinstance(code, int) or not 0 <= code <= 0xFFFF:
            if not isinstance(code, int):
                log.error("The Python incoming-cstore-instance filter has not returned an integer")
            else:
                log.error("The Python incoming-cstore-instance filter has returned an out-of-range value: %r", code)
            raise OrthancError(ErrorCode.PLUGIN, "Bad answer of the Python incoming C-STORE instance filter")
        return code

    # -- HTTP hooks (called by api.app) ---------------------------------------------------------
    def valid_token(self, authorization: str) -> bool:
        return bool(self.tokens) and authorization in self.tokens

    def new_token(self) -> str:
        token = f"Bearer {uuid.uuid4()}"
        self.tokens.add(token)
        return token

    async def http_request(self, app: DonjonApp, request: Request, method: str) -> Response | None:
        """The plugin's answer (filter refusal or plugin route), None to let the core answer."""
        if self.http_filter is not None:
            args, kwargs = filter_arguments(request, method)
            try:
                allowed = await self.runner.call_async("incoming-http-request filter", self.http_filter,
                                                       *args, **kwargs)
            except Failed:
                raise OrthancError(ErrorCode.PLUGIN) from None
            if not isinstance(allowed, bool):
                log.error("The Python incoming-http-request filter has not returned a Boolean")
                raise OrthancError(ErrorCode.PLUGIN)
            if not allowed:
                return Response(403)
        if not self.routes:
            return None
        found = self.routes.match(request.path)
        if found is None:
            return None
        body = await request.body() if method in ("POST", "PUT") else None
        return await app.api.run(self.routes.answer, found, request, method, body, app.describe_errors)

    # -- the REST API, in-process -------------------------------------------------------------
    def rest_call(self, method: str, uri: str, body: bytes | str | None, after_plugins: bool) -> bytes:
        if self.app is None:
            raise OrthancException(ErrorCode.DATABASE_NOT_INITIALIZED)
        data = as_body(body)
        request = build_request(method, uri, data)
        if after_plugins and self.routes:
            found = self.routes.match(request.path)
            if found is not None:
                try:
                    response = self.routes.answer(found, request, method, data, self.app.describe_errors)
                except OrthancError as e:
                    raise OrthancException.of(e) from None
                if response.status >= 400:
                    raise error_of_status(response.status)
                return response.body
        return self.rest.call(request).body

    # -- C-FIND and C-MOVE (called by network.scp) --------------------------------------------------
    def find(self, identifier: Dataset, transfer_syntax: str, issuer_aet: str, called_aet: str
             ) -> tuple[list[bytes], bool] | None:
        assert self.find_callback is not None
        return run_find(self.find_callback, identifier, self.require_ctx().default_encoding, transfer_syntax,
                        issuer_aet, called_aet)

    def move(self, identifier: Dataset, originator_aet: str, source_aet: str, target_aet: str,
             originator_id: int) -> bool:
        assert self.move_callback is not None
        return run_move(self.move_callback, identifier, self.require_ctx().default_encoding, originator_aet,
                        source_aet, target_aet, originator_id)

    # -- helpers of the SDK -------------------------------------------------------------------------
    def dicom_of(self, instance_id: str) -> bytes:
        from ..core.attachments import read_attachment
        ctx = self.require_ctx()
        info = ctx.instance_file(instance_id)
        if info is None:
            raise OrthancException(ErrorCode.UNKNOWN_RESOURCE)
        try:
            return read_attachment(ctx.storage, info)
        except OrthancError as e:
            raise OrthancException.of(e) from None

    def configuration_json(self) -> str:
        return json.dumps(self.config.raw, indent=3, sort_keys=True)

    def lookup(self, level: Level, tag: int, value: str) -> str:
        from ..core.matching import normalize
        ctx = self.require_ctx()

        def run(tx: Any) -> str | None:
            for internal_id, found_level in tx.lookup_identifier(int(level), tag, normalize(value)):
                if found_level == level:
                    row = tx.resource(internal_id)
                    if row is not None:
                        return str(row.public_id)
            return None
        found = ctx.index.read(run)
        if found is None:
            raise OrthancException(ErrorCode.INTERNAL_ERROR)  # Orthanc's plugin: a NULL answer
        return found

    def info(self) -> dict[str, Any]:
        """`GET /plugins/python`, as Orthanc's `GetPlugin`: a root URI starting with `/` is made relative
        to `/app/explorer.html` (`../...`), an empty one is left out; the keys in jsoncpp's order."""
        out: dict[str, Any] = {"Description": self.description,
                               "ExtendsOrthancExplorer": self.explorer_js is not None, "ID": PLUGIN_ID}
        if self.root_uri:
            out["RootUri"] = ".." + self.root_uri if self.root_uri.startswith("/") else self.root_uri
        out["Version"] = __version__
        return out


def _accepts_two_arguments(callback: Callable[..., Any]) -> bool:
    """Release 4.0 of Orthanc's plugin called the received-instance callback with the bytes only."""
    try:
        params = list(inspect.signature(callback).parameters.values())
    except (TypeError, ValueError):
        return True
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return True
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2
