"""The sampling profiler's report: CPU samples charged to the right package and to tsunagu's own functions."""

from __future__ import annotations

from bench.sampler import PROJECT, Samples, area

SITE = "/opt/venv/lib/python3.11/site-packages/"


def test_files_are_charged_to_their_package_or_to_tsunagu() -> None:
    assert area(f"{SITE}sqlalchemy/orm/session.py") == "sqlalchemy"
    assert area(f"{PROJECT}.venv/lib/python3.11/site-packages/litestar/app.py") == "litestar"
    assert area(f"{PROJECT}core/identity/authn.py") == "tsunagu core"
    assert area("/usr/lib/python3.11/asyncio/events.py") == "python"


def test_the_report_shares_samples_by_package_and_by_tsunagus_functions_inclusive() -> None:
    samples = Samples(interval=0.001)
    request = [
        (f"{PROJECT}core/http/binding.py", "__call__"),
        (f"{PROJECT}core/identity/authn.py", "authenticate"),
    ]
    samples.stacks[(*request, (f"{SITE}sqlalchemy/orm/session.py", "execute"))] += 3
    samples.stacks[(request[0], (f"{SITE}litestar/app.py", "__call__"))] += 1
    report = samples.report()
    assert report.startswith("4 samples of CPU time")
    by_package = report.split("== by package of the innermost frame ==\n")[1].split("\n\n")[0].splitlines()
    assert by_package == ["  75.0 %        3  sqlalchemy", "  25.0 %        1  litestar"]
    ours = report.split("== tsunagu's functions, inclusive ==\n")[1].split("\n\n")[0].splitlines()
    assert ours == [
        " 100.0 %        4  core/http/binding.py:__call__",
        "  75.0 %        3  core/identity/authn.py:authenticate",
    ]
    assert (
        "core/http/binding.py:__call__;core/identity/authn.py:authenticate;sqlalchemy/orm/session.py:execute 3"
        in report
    )
