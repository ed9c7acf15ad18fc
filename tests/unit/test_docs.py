"""The documentation keeps up with the code: hooks, CLI commands and environment variables.

- ``docs/plugin-hooks.md`` has exactly one ``## name(args)`` section per hook specification in
  ``core/hookspecs.py``, with the spec's argument names in the spec's order, and says truthfully whether the
  first result wins;
- ``docs/cli.md`` names every command and subcommand of ``tsunagu`` (plugins' commands included) as a heading or
  a code span ``tsunagu <path>``;
- ``docs/operations.md`` names every ``TSUNAGU_*`` variable that ``core.settings`` reads.

Each check reports everything that is missing at once, so one run tells the whole story.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator

import click
import pytest

from core import hookspec, hookspecs
from core.settings import _ENV_FIELDS, PROJECT_ROOT

DOCS = PROJECT_ROOT / "docs"
HOOK_HEADING = re.compile(r"^##\s+(?P<name>[A-Za-z_]\w*)\((?P<args>[^)]*)\)\s*$")
FIRST_RESULT_LINE = re.compile(r"^\s*[-*]\s+\*\*First result wins:\*\*\s+(?P<answer>yes|no)\b", re.I)
HEADING = re.compile(r"^#{1,6}\s+(?P<text>.+?)\s*#*\s*$")
CODE_SPAN = re.compile(r"(`+)(?P<text>.+?)\1")


def _read(name: str) -> str:
    path = DOCS / name
    if not path.is_file():
        pytest.fail(f"docs/{name} is missing", pytrace=False)
    return path.read_text(encoding="utf-8")


def _without_fenced_code(text: str) -> list[str]:
    """The lines of a Markdown text outside ``` / ~~~ fences (a heading inside an example does not count)."""
    lines, fence = [], ""
    for line in text.splitlines():
        stripped = line.lstrip()
        marker = stripped[:3]
        if marker in ("```", "~~~"):
            if not fence:
                fence = marker
                continue
            if marker == fence:
                fence = ""
                continue
        if not fence:
            lines.append(line)
    return lines


# --- hooks ----------------------------------------------------------------------------------------------------


def spec_hooks() -> dict[str, tuple[list[str], bool]]:
    """Every function in core/hookspecs.py carrying the pluggy spec marker: name -> (argument names, firstresult)."""
    marker_attribute = f"{hookspec.project_name}_spec"
    found = {}
    for name, fn in inspect.getmembers(hookspecs, inspect.isfunction):
        options = getattr(fn, marker_attribute, None)
        if options is not None:
            found[name] = (list(inspect.signature(fn).parameters), bool(options.get("firstresult")))
    return found


def documented_hooks() -> dict[str, list[tuple[list[str], bool | None]]]:
    """``## name(args)`` sections of plugin-hooks.md: name -> one (args, "first result wins" answer) per section."""
    sections: dict[str, list[tuple[list[str], bool | None]]] = {}
    current: tuple[str, list[str]] | None = None
    answer: bool | None = None

    def close() -> None:
        if current is not None:
            sections.setdefault(current[0], []).append((current[1], answer))

    for line in _without_fenced_code(_read("plugin-hooks.md")):
        heading = HOOK_HEADING.match(line)
        if heading or line.startswith("## "):
            close()
            current, answer = None, None
            if heading:
                args = [a.strip() for a in heading["args"].split(",") if a.strip()]
                current = (heading["name"], args)
            continue
        said = FIRST_RESULT_LINE.match(line)
        if said and current is not None:
            answer = said["answer"].lower() == "yes"
    close()
    return sections


def test_hookspecs_module_has_hooks() -> None:
    # Guards the checks below: if the marker attribute were misnamed they would pass on nothing.
    assert spec_hooks(), "found no function carrying the tsunagu_spec marker in core/hookspecs.py"


def test_every_hook_has_a_section() -> None:
    missing = sorted(set(spec_hooks()) - set(documented_hooks()))
    assert not missing, "docs/plugin-hooks.md has no '## name(args)' section for: " + ", ".join(
        f"{name}({', '.join(spec_hooks()[name][0])})" for name in missing
    )


def test_every_section_names_a_hook() -> None:
    unknown = sorted(set(documented_hooks()) - set(spec_hooks()))
    assert not unknown, (
        "docs/plugin-hooks.md documents hooks that core/hookspecs.py does not define: " + ", ".join(unknown)
    )


def test_each_hook_is_documented_once() -> None:
    repeated = sorted(name for name, sections in documented_hooks().items() if len(sections) > 1)
    assert not repeated, "docs/plugin-hooks.md has more than one section for: " + ", ".join(repeated)


def test_documented_arguments_match_the_spec() -> None:
    specs = spec_hooks()
    wrong = [
        f"{name}: documented ({', '.join(args)}), spec has ({', '.join(specs[name][0])})"
        for name, sections in sorted(documented_hooks().items())
        if name in specs
        for args, _ in sections
        if args != specs[name][0]
    ]
    assert not wrong, "docs/plugin-hooks.md argument lists differ from core/hookspecs.py:\n  " + "\n  ".join(
        wrong
    )


def test_documented_first_result_matches_the_spec() -> None:
    specs = spec_hooks()
    wrong = []
    for name, sections in sorted(documented_hooks().items()):
        if name not in specs:
            continue
        expected = specs[name][1]
        for _, answer in sections:
            if answer is None:
                wrong.append(f"{name}: no '- **First result wins:** yes|no' line")
            elif answer != expected:
                wrong.append(f"{name}: documented {'yes' if answer else 'no'}, spec firstresult={expected}")
    assert not wrong, (
        "docs/plugin-hooks.md disagrees with core/hookspecs.py on firstresult:\n  " + "\n  ".join(wrong)
    )


# --- CLI ------------------------------------------------------------------------------------------------------


def command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[str]:
    """Every command and subcommand below ``group`` as ``"plugin enable"``; groups themselves included."""
    ctx = click.Context(group, info_name=" ".join(("tsunagu", *prefix)))
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if command is None or command.hidden:
            continue
        path = (*prefix, name)
        yield " ".join(path)
        if isinstance(command, click.Group):
            yield from command_paths(command, path)


def cli_doc_names() -> set[str]:
    """Headings and inline code spans of cli.md, backticks removed and whitespace collapsed."""
    names = set()
    for line in _without_fenced_code(_read("cli.md")):
        heading = HEADING.match(line)
        if heading:
            names.add(" ".join(heading["text"].replace("`", " ").split()))
        for span in CODE_SPAN.finditer(line):
            names.add(" ".join(span["text"].split()))
    return names


def test_cli_tree_is_walked() -> None:
    from cli import build_cli

    paths = set(command_paths(build_cli()))
    # Guards the check below: it must see nested commands, not only the top level.
    assert {"municipality apply", "plugin enable", "db upgrade", "serve"} <= paths, sorted(paths)


def test_every_cli_command_is_documented() -> None:
    from cli import build_cli

    documented = cli_doc_names()
    missing = [path for path in command_paths(build_cli()) if f"tsunagu {path}" not in documented]
    assert not missing, "docs/cli.md has no heading or code span for: " + ", ".join(
        f"`tsunagu {p}`" for p in missing
    )


# --- environment ----------------------------------------------------------------------------------------------


def test_every_environment_variable_is_documented() -> None:
    text = _read("operations.md")
    missing = [
        v for v in _ENV_FIELDS.values() if not re.search(rf"(?<![A-Z0-9_]){re.escape(v)}(?![A-Z0-9_])", text)
    ]
    assert not missing, "docs/operations.md does not mention: " + ", ".join(missing)


def test_docs_are_where_the_readme_says() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    linked = re.findall(r"\]\((docs/[^)#\s]+)", readme)
    absent = [link for link in linked if not (PROJECT_ROOT / link).is_file()]
    assert not absent, "README.md links to documentation that does not exist: " + ", ".join(absent)
