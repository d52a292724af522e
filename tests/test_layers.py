"""The layers the code keeps (pyproject.toml's import-linter contracts, DESIGN.md): the contracts
hold, every module of the package sits in a layer, and no modules import each other in a cycle."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import sparse_lstm_ad
from tests.conftest import ROOT

CONTRACTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
CYCLES_TOOL = ROOT.parent / "shared" / "tools" / "import_cycles.py"


def _layers() -> list[set[str]]:
    (contract,) = [c for c in CONTRACTS["contracts"] if c["type"] == "layers"]
    return [
        {name.strip() for name in layer.replace("|", ":").split(":")}
        for layer in contract["layers"]
    ]


def test_import_contracts_hold() -> None:
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint_imports), "--no-cache", "--no-logo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert f"Contracts: {len(CONTRACTS['contracts'])} kept, 0 broken." in result.stdout


def test_every_module_sits_in_a_layer() -> None:
    # A module in no layer would escape every contract.
    placed = set().union(*_layers())
    modules = {f"sparse_lstm_ad.{m.name}" for m in pkgutil.iter_modules(sparse_lstm_ad.__path__)}
    assert modules - placed == set()
    # The Hydra and MLflow ban covers exactly the two lowest layers: domain and config.
    (banned,) = [c for c in CONTRACTS["contracts"] if c["name"].startswith("Domain modules")]
    domain, config = _layers()[-2:]
    assert set(banned["source_modules"]) == domain | config


@pytest.mark.skipif(not CYCLES_TOOL.exists(), reason=f"no {CYCLES_TOOL} beside this checkout")
def test_no_import_cycles_by_the_shared_tool() -> None:
    # Lazy imports count, `if TYPE_CHECKING:` ones do not (lint-imports' acyclic contract
    # checks the same with the one annotation import it names).
    result = subprocess.run(
        [sys.executable, str(CYCLES_TOOL), "src", "sparse_lstm_ad"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout[-4000:]
    assert result.stdout.startswith("0 import cycle(s)")
