"""The CSV files themselves: where they are, reading them, and what their contents hash to."""

from __future__ import annotations

import gzip
import hashlib
import lzma
import zipfile
import zlib
from pathlib import Path

import pandas as pd

from sparse_lstm_ad.config import CsvDataConfig


def resolve(cfg: CsvDataConfig, name: str, key: str) -> Path:
    if not name:
        raise ValueError(f"data.csv.{key} is not set: name the file (relative to data.csv.dir)")
    path = Path(cfg.dir) / name  # an absolute `name` replaces `dir`
    if not path.is_file():
        raise ValueError(f"{path}: no such file (data.csv.{key}, from {Path.cwd()})")
    return path


# What a truncated or corrupt compressed file raises while pandas decompresses it.
_BAD_COMPRESSION = (EOFError, gzip.BadGzipFile, zlib.error, lzma.LZMAError, zipfile.BadZipFile)


def read_csv_file(path: Path) -> pd.DataFrame:
    """The file's rows, or a ValueError naming it and what is wrong with it."""
    try:
        _refuse_duplicate_columns(path)
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not a readable CSV file ({_first_line(error)})") from error
    except (*_BAD_COMPRESSION, OSError) as error:
        raise ValueError(
            f"{path}: a truncated or corrupt compressed file, or not one "
            f"({type(error).__name__}: {_first_line(error)})"
        ) from error
    if frame.empty:
        raise ValueError(f"{path}: no data rows")
    return frame


def _first_line(error: BaseException) -> str:
    return (str(error).strip() or repr(error)).splitlines()[0]


def _refuse_duplicate_columns(path: Path) -> None:
    """pandas renames a second `s00` to `s00.1`: a silent new channel. Refuse it instead."""
    header = pd.read_csv(path, header=None, nrows=1).iloc[0].astype(str).tolist()
    seen: dict[str, int] = {}
    for number, name in enumerate(header, start=1):
        if name in seen:
            raise ValueError(
                f"{path}: column name {name!r} appears twice in the header "
                f"(columns {seen[name]} and {number}): rename one"
            )
        seen[name] = number


_HASHED_BYTES = 256 * 2**20  # files up to this size are hashed; larger ones by size and mtime


def input_fingerprint(cfg: CsvDataConfig) -> dict[str, str]:
    """file key -> a fingerprint of its contents: a changed file changes a run's identity."""
    names = {"train": cfg.train, "test": cfg.test, "channel_labels": cfg.channel_labels}
    return {
        key: _file_fingerprint(Path(cfg.dir) / name)
        for key, name in names.items()
        if name and (Path(cfg.dir) / name).is_file()
    }


def _file_fingerprint(path: Path) -> str:
    stat = path.stat()
    if stat.st_size > _HASHED_BYTES:
        return f"size {stat.st_size} mtime {stat.st_mtime_ns}"
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()
