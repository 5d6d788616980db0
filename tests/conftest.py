"""Shared test helpers: the repository root, small specs written on the fly, the CLI."""

from __future__ import annotations

import io
import os
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def run_cli():
    """Run ``voxspec ARGS`` in-process; return (exit code, stdout, stderr)."""
    from voxspec.cli import main

    def run(*args: str):
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            code = main([str(a) for a in args])
        return code, out.getvalue(), err.getvalue()

    return run


@pytest.fixture
def write_spec(tmp_path):
    """Write a spec file (text) into a temporary folder and return its path."""

    def write(text: str, name: str = "fig.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def pytest_configure(config):
    os.environ.setdefault("MPLBACKEND", "Agg")
