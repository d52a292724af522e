"""The options that point a command (reproduce, score, register) at an MLflow store."""

from __future__ import annotations

import argparse

from sparse_lstm_ad.config import TrackingConfig


def add_store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tracking-dir", default="mlruns", help="local store (default: mlruns)")
    parser.add_argument("--tracking-uri", default=None, help="a tracking server or database URI")


def store_config(args: argparse.Namespace) -> TrackingConfig:
    return TrackingConfig(dir=args.tracking_dir, uri=args.tracking_uri)
