"""The MLflow store: where it is, checks that it can be reached, and its creation.

A local SQLite store is created once, under an inter-process lock, in a temporary file that
is renamed into place when complete: commands started together never run MLflow's schema
migrations side by side (that was seen to break the store for good), and no command ever
opens a half-made one. The scratch file is a copy of an empty store kept in the user's cache
folder (`cache_dir`), migrated once per MLflow version. Concurrent use beyond one machine goes
through a tracking server.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import socket
import sqlite3
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

from sparse_lstm_ad.config import TrackingConfig
from sparse_lstm_ad.files import exclusive_lock, written_whole
from sparse_lstm_ad.tracking.liveness import close_dead_runs
from sparse_lstm_ad.tracking.retries import retrying

log = logging.getLogger(__name__)

_CONNECT_TIMEOUT_S = 3.0
_DB_PORTS = {"postgresql": 5432, "mysql": 3306, "mssql": 1433}


class StoreError(RuntimeError):
    """The tracking store cannot be reached, created or written."""


def is_unreachable(error: BaseException) -> bool:
    """A tracking server or database that stopped answering (after MLflow's own retries)."""
    text = str(error).lower()
    return any(word in text for word in ("max retries exceeded", "connection refused"))


def tracking_uri(cfg: TrackingConfig) -> str:
    if cfg.uri:
        return cfg.uri
    return f"sqlite:///{(Path(cfg.dir) / 'mlflow.db').resolve()}"


def use_store(cfg: TrackingConfig) -> str:
    """Point MLflow at `cfg`'s store: the one place the package sets the tracking URI."""
    uri = tracking_uri(cfg)
    quiet_mlflow()  # before any transfer: a command that only reads (reproduce) shows no bars
    mlflow.set_tracking_uri(uri)
    return uri


def store_error(cfg: TrackingConfig, error: BaseException) -> StoreError:
    first_line = (str(error).strip() or repr(error)).splitlines()[0]
    return StoreError(f"tracking store {tracking_uri(cfg)} cannot be used: {first_line}")


_prepared: dict[tuple[str, str], str] = {}


def prepare_store(cfg: TrackingConfig) -> str:
    """Create the store and the experiment if needed; return the experiment id.

    Once per process and store: the commands call it before every search.
    """
    key = (tracking_uri(cfg), cfg.experiment)
    if key in _prepared:
        use_store(cfg)
        return _prepared[key]
    check_store(cfg)
    quiet_mlflow()
    try:
        with _creation_lock(cfg):
            _create_sqlite_store(cfg)
            use_store(cfg)
            experiment_id = _experiment_id(cfg)
    except StoreError:
        raise
    except Exception as error:  # MLflow and SQLAlchemy raise many types for a bad store
        raise store_error(cfg, error) from error
    _prepared[key] = experiment_id
    _close_dead_runs(cfg)
    return experiment_id


def forget_stores() -> None:
    """For a process that runs one command after another (the train daemon): the next command
    checks, opens and tidies its stores as a fresh process would. A store deleted or replaced
    meanwhile is made again, and another process's dead runs are closed.

    MLflow keeps a store object per URI (an lru_cache on its registries) and an engine per
    database (SqlAlchemyStore._engine_map): both are private, so each is reached only if there.
    """
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as ModelStore
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as RunStore
    from mlflow.tracking._model_registry.registry import ModelRegistryStoreRegistry
    from mlflow.tracking._tracking_service.registry import TrackingStoreRegistry

    _prepared.clear()
    for registry in (TrackingStoreRegistry, ModelRegistryStoreRegistry):
        if hasattr(cached := registry._get_store_with_resolved_uri, "cache_clear"):
            cached.cache_clear()
    for store in (RunStore, ModelStore):
        engines = getattr(store, "_engine_map", {})
        for engine in engines.values():
            engine.dispose()
        engines.clear()


def close_dead(cfg: TrackingConfig) -> None:
    """End KILLED the runs a dead process left RUNNING (a job on a node that died), now: a
    sweep's end counts them as killed rather than leaving them to the next command."""
    use_store(cfg)
    _close_dead_runs(cfg)


def _close_dead_runs(cfg: TrackingConfig) -> None:
    """Runs a dead process left RUNNING, in every experiment: any command on the store ends them."""
    try:
        experiments = retrying(MlflowClient().search_experiments)
        close_dead_runs([experiment.experiment_id for experiment in experiments])
    except Exception as error:  # many types for a bad store, as above
        raise store_error(cfg, error) from error


def quiet_mlflow() -> None:
    # Schema migrations and model validation log at INFO on every run: noise in a sweep log.
    for name in ("alembic", "mlflow.store.db.utils", "mlflow.pyfunc", "mlflow.system_metrics"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # Progress bars of artifact transfers would fill every job's log and every command's output.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # MLflow prints "View run ... / View experiment ..." to stdout as each run against a
    # server ends: a run says where it is in its own log line, and a command's output is its
    # outcome (reproduce printed them).
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")


@contextmanager
def _creation_lock(cfg: TrackingConfig) -> Iterator[None]:
    """An exclusive lock beside a local store, held while it and its experiment are made."""
    if cfg.uri:
        yield
        return
    with exclusive_lock(Path(cfg.dir) / ".mlflow.db.lock"):
        yield


def _create_sqlite_store(cfg: TrackingConfig) -> None:
    """Make a complete store in a scratch file and rename it into place.

    The scratch starts as a copy of an empty store made once per MLflow version (MLflow's
    schema migrations take 2-3 s, paid by every new store otherwise); only the Default
    experiment's artifact location and times are then set, as MLflow would have set them.
    """
    if cfg.uri or (Path(cfg.dir) / "mlflow.db").exists():
        return
    final = Path(cfg.dir).resolve() / "mlflow.db"
    root = (final.parent / "artifacts").as_uri()  # _artifact_root(cfg), for a local store
    with written_whole(final) as scratch:  # others see no store or a whole one
        template = _empty_store()
        if template is None:  # no cache to keep it in: migrate this one
            _migrated_store(scratch, root)
        else:
            shutil.copyfile(template, scratch)
            _point_default_experiment(scratch, root)
    log.info("created the tracking store %s", final)


def _migrated_store(path: Path, artifact_root: str) -> None:
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore(f"sqlite:///{path}", artifact_root)
    store.engine.dispose()


def cache_dir() -> Path:
    """Where the package keeps what it can rebuild: $SPARSE_LSTM_AD_CACHE, else the user's
    cache folder (XDG)."""
    if folder := os.environ.get("SPARSE_LSTM_AD_CACHE"):
        return Path(folder)
    xdg = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(xdg) / "sparse-lstm-ad"


def _empty_store() -> Path | None:
    """An empty, migrated store for this MLflow version, made on first use; None when the
    cache folder cannot be written."""
    template = cache_dir() / f"mlflow-{mlflow.__version__}-empty.db"
    if template.exists():
        return template
    try:
        with written_whole(template) as scratch:  # processes racing here each rename a whole one
            _migrated_store(scratch, (template.parent / "artifacts").as_uri())
    except OSError as error:
        log.debug("no store template in %s: %s", template.parent, error)
        return None
    return template


def _point_default_experiment(path: Path, artifact_root: str) -> None:
    """The Default experiment (id 0) as SqlAlchemyStore creates it for `artifact_root`."""
    from mlflow.utils.time import get_current_time_millis
    from mlflow.utils.uri import append_to_uri_path, resolve_uri_if_local

    location = append_to_uri_path(resolve_uri_if_local(artifact_root), "0")
    now = get_current_time_millis()
    with closing(sqlite3.connect(path)) as db, db:
        db.execute(
            "UPDATE experiments SET artifact_location = ?, creation_time = ?, "
            "last_update_time = ? WHERE experiment_id = 0",
            [location, now, now],
        )


def _artifact_root(cfg: TrackingConfig) -> str | None:
    return None if cfg.uri else (Path(cfg.dir) / "artifacts").resolve().as_uri()


# Read by MLflow 3 UIs before 3.17's GenAI / Model training switch, which ignores it (the
# printed links ask for the training view instead: ui_links).
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}


def _experiment_id(cfg: TrackingConfig) -> str:
    experiment = retrying(mlflow.get_experiment_by_name, cfg.experiment)
    if experiment is None:
        try:
            return retrying(
                mlflow.create_experiment,
                cfg.experiment,
                artifact_location=_artifact_root(cfg),
                tags=EXPERIMENT_KIND,
            )
        except mlflow.exceptions.MlflowException as error:
            if "already exists" not in str(error):  # else a command on another host made it
                raise
            experiment = retrying(mlflow.get_experiment_by_name, cfg.experiment)
    if experiment.lifecycle_stage == "deleted":
        # MLflow's CLI takes the store from the environment only: without it, it would look
        # in the folder it runs in (and make a store there).
        uri = shlex.quote(tracking_uri(cfg))
        restore = f"MLFLOW_TRACKING_URI={uri} mlflow experiments restore"
        raise StoreError(
            f"tracking.experiment={cfg.experiment} was deleted in {tracking_uri(cfg)}: restore "
            f"it ({restore} --experiment-id {experiment.experiment_id}) or pick another name"
        )
    if "mlflow.experimentKind" not in experiment.tags:  # made by an older version
        for key, value in EXPERIMENT_KIND.items():
            retrying(mlflow.MlflowClient().set_experiment_tag, experiment.experiment_id, key, value)
    return experiment.experiment_id


def check_existing_store(cfg: TrackingConfig) -> None:
    """For a command that only reads runs or models (score, and reproduce before it runs):
    one line when the local store is not there or is no SQLite database, and nothing
    created; a read-only store is fine. A server or another database: as check_store."""
    database = _sqlite_file(cfg)
    if database is None:
        check_store(cfg)
        return
    named = f"tracking.uri={cfg.uri}" if cfg.uri else f"tracking.dir={cfg.dir}"
    if not database.is_file():
        raise StoreError(f"{named}: no MLflow store there (no {database})")
    # The header, not a connection: a read-only one could not roll back the journal a killed
    # writer left, which MLflow's own connection does.
    with open(database, "rb") as file:
        if file.read(16) != b"SQLite format 3\x00":
            raise StoreError(f"{named}: {database} is no SQLite database")


def _sqlite_file(cfg: TrackingConfig) -> Path | None:
    """The SQLite file of a local store (tracking.dir, or a sqlite:/// URI); None for others."""
    uri = tracking_uri(cfg)
    if not uri.startswith("sqlite:///") or ":memory:" in uri:
        return None
    return Path(uri.removeprefix("sqlite:///").split("?")[0])


def check_store(cfg: TrackingConfig) -> None:
    """Fail fast, in one line, when the store is unreachable or cannot be created."""
    if cfg.is_server:
        _check_server(cfg.uri)
    elif cfg.uri:
        _check_database(cfg.uri)
    else:
        folder = Path(cfg.dir)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if not os.access(folder, os.W_OK):
                raise PermissionError(13, "not writable")
        except OSError as error:
            raise StoreError(
                f"tracking.dir={cfg.dir} cannot hold the store: {error.strerror or error}"
            ) from error


def _check_server(uri: str) -> None:
    try:
        urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=5).close()
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise StoreError(f"tracking.uri={uri} is not reachable: {reason}") from error


def _check_database(uri: str) -> None:
    """A database server that does not answer is told in seconds, not after MLflow's retries."""
    import sqlalchemy

    try:
        url = sqlalchemy.engine.make_url(uri)
    except sqlalchemy.exc.ArgumentError as error:
        raise StoreError(f"tracking.uri={uri} is not a database or server URI") from error
    dialect = url.get_backend_name()
    if dialect == "sqlite" or not url.host:  # a file, or a local socket: nothing to dial
        return
    port = url.port or _DB_PORTS.get(dialect)
    if port is None:
        return
    shown = url.render_as_string(hide_password=True)
    try:
        socket.create_connection((url.host, port), timeout=_CONNECT_TIMEOUT_S).close()
    except OSError as error:
        raise StoreError(
            f"tracking.uri={shown} is not reachable: nothing answers at {url.host}:{port} "
            f"({error.strerror or error})"
        ) from error
    # One login, before MLflow's ten attempts (about 100 s) at a wrong password or database.
    engine = sqlalchemy.create_engine(url)
    try:
        engine.connect().close()
    except sqlalchemy.exc.SQLAlchemyError as error:
        reason = str(getattr(error, "orig", error)).strip().splitlines()[0]
        raise StoreError(f"tracking.uri={shown} cannot be used: {reason}") from error
    finally:
        engine.dispose()


def experiment_names(cfg: TrackingConfig) -> list[str]:
    """The store's active experiments; [] for a local store not created yet (nor created here)."""
    if not cfg.uri and not (Path(cfg.dir) / "mlflow.db").exists():
        return []
    check_store(cfg)
    use_store(cfg)
    try:
        return [experiment.name for experiment in retrying(mlflow.search_experiments)]
    except Exception as error:  # as in prepare_store: many types for a bad store
        raise store_error(cfg, error) from error


def require_experiment(cfg: TrackingConfig) -> None:
    """Raise LookupError, naming the store's experiments, if cfg.experiment is not among them.

    Searching a missing experiment would create it, empty, and answer only "no run of that
    sweep": the way a sweep logged with `tracking.experiment=NAME` looked lost.
    """
    names = experiment_names(cfg)
    if cfg.experiment in names:
        return
    if names:
        hint = f"it has {', '.join(sorted(names))}: name the sweep's with --experiment"
    else:
        hint = "no experiment at all: check --tracking-dir or --tracking-uri"
    raise LookupError(f"no experiment {cfg.experiment!r} in {tracking_uri(cfg)} ({hint})")


def check_model_name(name: str | None) -> str | None:
    """Why the registry would refuse `name` (tracking.register_as), or None if it would not."""
    if name is None:
        return None
    from mlflow.utils.validation import _validate_model_name

    try:
        _validate_model_name(name)
    except mlflow.exceptions.MlflowException as error:
        return error.message.splitlines()[0]
    return None
