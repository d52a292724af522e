"""Checks of a whole `train.py` command before Hydra starts a job: one line for any mistake.

Every job's config is composed and checked first, swept values included (a sweep's bad value
used to fail mid-sweep while the other jobs trained), then each distinct data block is loaded
and each store opened. Hydra's own composition errors (several lines, exit 1) are reworded
into one line naming the key or the option. TensorFlow is never imported here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import json
import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra._internal.utils import get_args_parser
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import IntervalSweep, Override
from hydra.errors import HydraException, MissingConfigException, OverrideParseException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from sparse_lstm_ad.cli.override_keys import override_key
from sparse_lstm_ad.cli.sweep_jobs import basic_sweep, last_of_each_key, preset_first
from sparse_lstm_ad.config import Config
from sparse_lstm_ad.config_checks import ConfigError, checked_config
from sparse_lstm_ad.detectors import family

# Options under which Hydra only prints (help, info) or reads a config we cannot see here.
_HYDRA_ONLY = ("help", "hydra_help", "info", "shell_completion", "config_path", "config_dir")


class UsageError(ValueError):
    """A mistake in the command: its one-line message says which key, option or file."""


@dataclass(frozen=True)
class Command:
    """A `train.py` command's jobs, composed and checked against the schemas."""

    configs: list[Config]
    launcher: DictConfig | None  # a multirun's `hydra.launcher`; None for a single run
    sweeper: str | None = None  # a multirun's `hydra.sweeper._target_`

    @property
    def fit_imports(self) -> tuple[str, ...]:
        """The modules the jobs' detectors import to fit (TensorFlow for a network)."""
        kinds = {config.model.kind for config in self.configs}
        return tuple(sorted({name for kind in kinds for name in family(kind).fit_imports}))


def check_command(argv: list[str], conf_dir: Path) -> None:
    """Raise UsageError for the first mistake in `train.py ARGV`; return if there is none."""
    if (command := composed_command(argv, conf_dir)) is not None:
        check_inputs(command)


def composed_command(argv: list[str], conf_dir: Path) -> Command | None:
    """Every job's config, composed and checked (swept values included); None for a command
    that only prints (help, --cfg). Raises UsageError for the first mistake."""
    parser = get_args_parser()
    parser.error = _refuse_arguments  # type: ignore[method-assign]
    args = parser.parse_args(argv)
    if any(getattr(args, name) for name in _HYDRA_ONLY):
        return None
    name = args.config_name or "config"
    with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
        jobs = sweep_jobs(args.overrides, args.multirun, name)
        configs = [_checked(name, job) for job in jobs]
        hydra = _compose(name, jobs[0]).hydra if args.multirun else None
    _COMPOSED.clear()
    _COMPOSED.update(task_overrides(job) for job in jobs)
    if args.cfg:  # printing the config runs nothing: no data, no store
        return None
    if hydra is not None and (trials := hydra.sweeper.get("n_trials")) is not None and trials < 1:
        raise UsageError(f"hydra.sweeper.n_trials={trials}: give at least 1 trial")
    if hydra is None:
        if configs[0].selection.enabled:  # one run: one candidate, no choice, no note
            raise UsageError(
                "selection.enabled=true (+experiment=select) chooses among a sweep's candidates "
                "(its model values): add -m before the overrides (-m +experiment=select ...)"
            )
        return Command(configs, None)
    return Command(configs, hydra.launcher, str(hydra.sweeper.get("_target_")))


# The jobs composed and checked in this process: Hydra's sweeper need not compose them again
# (hydra_plugins/sparse_lstm_ad_sweeper).
_COMPOSED: set[tuple[str, ...]] = set()


def task_overrides(job: Sequence[str]) -> tuple[str, ...]:
    """A job's overrides as Hydra's sweeper lists them: its own, not Hydra's, in any order."""
    hydra_keys = ("hydra.", "hydra/")
    return tuple(sorted(o for o in job if not override_key(o).startswith(hydra_keys)))


def composed(job: Sequence[str]) -> bool:
    """Whether this process composed and checked the job already (composed_command)."""
    return task_overrides(job) in _COMPOSED


def sweeper_choice(command: Command, argv: list[str]) -> list[str]:
    """The override that runs a basic sweep without Hydra's second composition of each job
    (hydra_plugins/sparse_lstm_ad_sweeper): every job was composed here. No override where
    the command chose its sweeper, or a preset did (Optuna), or it is no multirun."""
    chosen = any(override_key(arg) == "hydra/sweeper" for arg in argv)
    if chosen or command.sweeper != f"{BasicSweeper.__module__}.{BasicSweeper.__name__}":
        return []
    return ["hydra/sweeper=checked_basic"]


def _refuse_arguments(message: str) -> None:
    raise UsageError(f"{message} (flags such as -m go before the overrides; see --help)")


def sweep_jobs(overrides: list[str], multirun: bool, config_name: str) -> list[list[str]]:
    """The override lists of the jobs the command would run (a single run: one list)."""
    parsed = _parse(overrides)
    _refuse_hydra_sweeps(parsed)
    if not multirun:
        return [overrides]
    base = _compose(config_name, [o.input_line for o in parsed if not o.is_sweep_override()])
    lines = preset_first(OmegaConf.select(base, "hydra.sweeper.params"), overrides)
    if "BasicSweeper" in str(OmegaConf.select(base, "hydra.sweeper._target_")):
        try:
            return basic_sweep(_parse(lines))  # as the sweeper will launch them
        except HydraException as error:  # an interval, which only a sampler reads
            raise UsageError(hydra_error_line(error)) from error
    # Another sweeper (Optuna) samples: each value, or an interval's ends, with the rest fixed.
    applied = last_of_each_key(_parse(lines))
    fixed = [o.input_line for o in applied if not o.is_sweep_override()]
    swept = [o for o in applied if o.is_sweep_override()]
    return [fixed] + [
        [*fixed, f"{o.get_key_element()}={v}"] for o in swept for v in sweep_values(o)
    ]


_SWEEPER_PARAMS = "hydra.sweeper.params."


def _refuse_hydra_sweeps(parsed: list[Override]) -> None:
    """Hydra refuses a sweep over its own config only after every job was checked (85 s for
    the benchmark), and where no preset sweeps it crashed OmegaConf here. A preset's list in
    hydra.sweeper.params is replaced by a sweep of the key itself on the command line."""
    for override in parsed:
        if not (override.is_sweep_override() and override.is_hydra_override()):
            continue
        key, values = override.key_or_group, override.input_line.partition("=")[2]
        if not key.startswith(_SWEEPER_PARAMS):
            raise UsageError(f"{key}={values}: Hydra's own config cannot be swept; give one value")
        raise UsageError(
            f"{key}={values}: Hydra's own config cannot be swept; sweep the key itself on the "
            f"command line: {key.removeprefix(_SWEEPER_PARAMS)}={values} (it replaces a preset's "
            "list)"
        )


def _parse(overrides: list[str]) -> list[Override]:
    try:
        return OverridesParser.create().parse_overrides(overrides)
    except OverrideParseException as error:
        raise UsageError(
            f"override {error.override!r} cannot be read: {error.message.splitlines()[0]} "
            "(see https://hydra.cc/docs/advanced/override_grammar/basic/)"
        ) from error


def sweep_values(override: Override) -> list[str]:
    """A swept override's values; an interval's two ends."""
    sweep = override.value()
    if isinstance(sweep, IntervalSweep):
        integral = all(float(end).is_integer() for end in (sweep.start, sweep.end))
        return [str(int(end) if integral else end) for end in (sweep.start, sweep.end)]
    return list(override.sweep_string_iterator())


def _compose(config_name: str, overrides: list[str]) -> DictConfig:
    try:
        return compose(config_name, overrides=overrides, return_hydra_config=True)
    except HydraException as error:
        raise UsageError(hydra_error_line(error)) from error
    except OmegaConfBaseException as error:
        raise UsageError(_omegaconf_line(error)) from error
    except (yaml.YAMLError, UnicodeDecodeError) as error:  # a conf/ file that is no YAML
        raise UsageError(_yaml_line(error)) from error
    except AssertionError as error:  # OmegaConf's, setting a key under a null node
        if (line := _null_params_line(config_name, overrides)) is None:
            raise
        raise UsageError(line) from error


def _null_params_line(config_name: str, overrides: list[str]) -> str | None:
    """A key set under hydra.sweeper.params where no preset sweeps (it is null there):
    OmegaConf's AssertionError. The key itself on the command line says the same. None for
    another assertion: the config without those keys is composed again to tell (0.3 s, on this
    path only)."""
    given = [o for o in overrides if o.startswith(_SWEEPER_PARAMS)]
    rest = [o for o in overrides if o not in given]
    if not given or not _params_null(config_name, rest):
        return None
    key, _, value = given[0].partition("=")
    return (
        f"{given[0]}: no preset sweeps here (hydra.sweeper.params is empty); give the key "
        f"itself on the command line: {key.removeprefix(_SWEEPER_PARAMS)}={value}"
    )


def _params_null(config_name: str, overrides: list[str]) -> bool:
    try:
        config = compose(config_name, overrides=overrides, return_hydra_config=True)
    except (HydraException, OmegaConfBaseException, AssertionError):
        return False  # another mistake: the original error stands
    return OmegaConf.select(config, "hydra.sweeper.params") is None


def _yaml_line(error: yaml.YAMLError | UnicodeDecodeError) -> str:
    """'conf/model/knn.yaml line 3: expected ',' or ']', but got '<stream end>' (not valid
    YAML)'; without a position, the error's first line."""
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    what = getattr(error, "problem", None) or getattr(error, "context", None)
    if mark is None or what is None:
        return f"a config file of conf/ cannot be read: {str(error).splitlines()[0]}"
    return f"{mark.name} line {mark.line + 1}: {what} (not valid YAML)"


def _checked(config_name: str, overrides: list[str]) -> Config:
    try:
        config = checked_config(_compose(config_name, overrides))
        detectors = family(config.model.kind)  # a kind the registry knows (detectors/)
    except ConfigError as error:
        raise UsageError(str(error)) from error
    except OmegaConfBaseException as error:  # a missing value (???) or a bad interpolation
        raise UsageError(_omegaconf_line(error)) from error
    if detectors.check is not None:
        try:
            detectors.check(config)  # the kind's own settings (model.options)
        except ValueError as error:
            raise UsageError(str(error)) from error
    return config


def hydra_error_line(error: HydraException) -> str:
    """Hydra's composition error in one line: the key or the option, and what is wrong."""
    if isinstance(error, MissingConfigException) and error.options is not None:
        missing = str(error.missing_cfg_file or "").strip()
        group = missing.rsplit("/", 1)[0]
        return (
            f"{group}={missing.rsplit('/', 1)[-1]}: no such option in conf/{group}/ "
            f"(the options: {', '.join(sorted(error.options))})"
        )
    cause = error.__cause__
    if isinstance(cause, OmegaConfBaseException):
        line = _omegaconf_line(cause)
        if "not in" in line and "Could not override" in str(error):
            line += _key_hint(cause)
        return line
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    # Every numbered way out is kept: an ambiguous value's second one (quote it) is the fix.
    kept = lines[:2] + [line for line in lines[2:] if re.match(r"\d+\. ", line)]
    return "; ".join(_shell_quoted(line) for line in kept) if kept else type(error).__name__


def _shell_quoted(line: str) -> str:
    """Hydra's example of a quoted value, as typed in a shell: composed here, Hydra shows it
    as Python would pass it (key='a,b'), whose quotes a shell strips before Hydra sees them."""
    return line.replace("key='value1,value2'", "\"key='value1,value2'\"")


def _key_hint(error: OmegaConfBaseException) -> str:
    """For a key the schema lacks: the nearest one it has, or its keys; `+key=` only where
    the node is no dataclass (a free dict such as model.options), since the schema refuses it."""
    schema = getattr(error, "object_type", None)
    if not dataclasses.is_dataclass(schema):
        return f" (to add a key, +{error.full_key}=...)"
    keys = [field.name for field in dataclasses.fields(schema)]
    parent = str(error.full_key).rpartition(".")[0]
    if close := difflib.get_close_matches(str(error.key), keys, n=1):
        return f" (did you mean {parent + '.' if parent else ''}{close[0]}?)"
    return f" (its keys: {', '.join(keys)})"


def _omegaconf_line(error: OmegaConfBaseException) -> str:
    message = str(getattr(error, "msg", "") or error).splitlines()[0]
    key = getattr(error, "full_key", None)
    return f"{key}: {message}" if key else message


def check_inputs(command: Command) -> None:
    """Each distinct data block loads and fits its window; each store opens; names are valid."""
    from sparse_lstm_ad import tracking
    from sparse_lstm_ad.pipeline import prepare_rows

    seen: set[str] = set()
    for config in command.configs:
        if (reason := tracking.check_model_name(config.tracking.register_as)) is not None:
            raise UsageError(f"tracking.register_as={config.tracking.register_as}: {reason}")
        data = _data_key(config)
        try:
            if data not in seen:
                with _data_warnings_muted():  # each run logs them, in its own log: not twice
                    prepare_rows(config)  # a data mistake: ValueError naming the file or key
                seen.add(data)
            tracking.prepare_store(config.tracking)
        except (ValueError, tracking.StoreError) as error:
            raise UsageError(str(error)) from error


@contextlib.contextmanager
def _data_warnings_muted() -> Iterator[None]:
    data_log = logging.getLogger("sparse_lstm_ad.data")
    level = data_log.level
    data_log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        data_log.setLevel(level)


def _data_key(config: Config) -> str:
    """What the loaded rows depend on."""
    blocks = OmegaConf.to_container(OmegaConf.structured(config.data), enum_to_str=True)
    return json.dumps([blocks, config.train.validation_split], sort_keys=True, default=str)
