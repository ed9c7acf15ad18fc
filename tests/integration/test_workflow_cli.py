"""``tsunagu workflow list | show NAME [--mermaid] [--json]``, with the throwaway ``holds`` plugin installed
through an entry point as a vendor's package would be. No database is needed: only declarations are read."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.workflow import mermaid
from tests.cli_runner import Run, cli_runner
from tests.integration.test_cli import assert_one_line_error
from tests.plugin_helpers import forget_modules, unique_module, write_distribution
from tests.workflow_plugin import HOLD

MIMIC = """
from core import Plugin, PluginMeta, Title, hookimpl
from core.workflow import Workflow
from tests.workflow_plugin import HOLD, Hold


class Mimic(Plugin):
    meta = PluginMeta(name="mimic", version="1.0", title=Title(ja="m", en="m"))

    @hookimpl
    def register_workflows(self):
        return [Workflow(name="mimic.hold", model=Hold, states=HOLD.states, initial="held")]


plugin = Mimic()
"""


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[Run]:
    write_distribution(tmp_path / "site", {"holds": "tests.workflow_plugin:plugin"}, {})
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("TSUNAGU_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'never-created.sqlite3'}")
    try:
        with cli_runner(capsys) as runner:
            yield runner
    finally:
        forget_modules()
    assert not (tmp_path / "never-created.sqlite3").exists()


@pytest.fixture
def mimic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Also install ``mimic``, which claims the model ``holds`` runs already: it is left out as broken."""
    module = unique_module("mimic")
    write_distribution(tmp_path / "mimic", {"mimic": f"{module}:plugin"}, {module: MIMIC})
    monkeypatch.syspath_prepend(str(tmp_path / "mimic"))


def test_list_names_each_workflow_with_its_plugin_states_and_transitions(run: Run, mimic: None) -> None:
    listed = run("workflow", "list", "--json").json()
    [holds] = [w for w in listed["workflows"] if w["name"] == "holds.hold"]
    assert holds == {
        "name": "holds.hold",
        "plugin": "holds",
        "states": 4,
        "transitions": ["confirm", "cancel", "expire"],
    }
    reason = "register_workflows: workflow mimic.hold: model Hold already runs workflow holds.hold"
    assert listed["broken"] == [{"name": "mimic", "reason": reason}]
    assert "mimic.hold" not in {w["name"] for w in listed["workflows"]}

    table = run("workflow", "list")
    assert table.code == 0, table.err
    [row] = [line for line in table.lines if "holds.hold" in line and not line.startswith("broken")]
    assert "holds" in row.replace("holds.hold", "") and "confirm, cancel, expire" in row
    assert f"broken mimic: {reason}" in table.lines


def test_show_gives_states_transitions_permissions_guards_and_timers(run: Run) -> None:
    shown = run("workflow", "show", "holds.hold", "--json").json()
    assert (shown["plugin"], shown["table"], shown["initial"]) == ("holds", "test_workflow_holds", "held")
    assert shown["states"][0] == {
        "name": "held",
        "title": {"ja": "仮押さえ", "en": "Held"},
        "initial": True,
        "final": False,
    }
    confirm, cancel, expire = shown["transitions"]
    assert confirm == {
        "name": "confirm",
        "source": ["held"],
        "target": "confirmed",
        "permission": "holds.confirm",
        "guard": "at_most_four_seats",
        "notify": ["holds.confirmed"],
    }
    assert cancel["source"] == ["held", "confirmed"] and expire["permission"] is None
    assert shown["timers"] == [{"state": "held", "after": "30m", "after_seconds": 1800, "fire": "expire"}]

    text = run("workflow", "show", "holds.hold")
    assert text.code == 0, text.err
    assert "仮押さえ" in text.out and "Held" in text.out
    assert any("held, confirmed → cancelled" in line and "holds.cancel" in line for line in text.lines)
    assert any("expire" in line and "(platform only)" in line for line in text.lines)


def test_show_mermaid_prints_the_diagram_alone(run: Run) -> None:
    result = run("workflow", "show", "holds.hold", "--mermaid")
    assert result.code == 0, result.err
    assert result.out == mermaid(HOLD)
    assert result.lines[0] == "stateDiagram-v2"


def test_an_unknown_workflow_is_one_line_and_exit_2(run: Run) -> None:
    assert_one_line_error(
        run("workflow", "show", "holds.hols"), "no workflow named 'holds.hols'", "holds.hold"
    )
    assert_one_line_error(run("workflow", "show", "holds.hold", "--mermaid", "--json"), "cannot be combined")
