"""Running the ``tsunagu`` command in-process, as the CLI tests do: exit code, stdout and stderr."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

import cli


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        assert self.code == 0, self.err
        return json.loads(self.out)

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


Run = Callable[..., Result]


@contextmanager
def cli_runner(capsys: pytest.CaptureFixture[str]) -> Iterator[Run]:
    """``run(*argv)`` runs one command; each command configures logging, so the caller's is put back after."""

    def run(*argv: object) -> Result:
        capsys.readouterr()
        code = cli.main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return Result(code, out, err)

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield run
    finally:
        root.handlers[:], root.level = handlers, level
