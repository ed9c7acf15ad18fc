"""A small sampling profiler from the standard library: where a server process spends its CPU time.

    python -m bench.sampler --output OUT.txt [--interval-ms 1] SCRIPT [ARGS...]

Sampling starts on SIGUSR1 (or at once with ``--now``) and pauses on SIGUSR2, so start-up and idle time can be
left out. While on, every
``interval`` of CPU time used by the process (``ITIMER_PROF``), the main thread's stack is recorded, followed
through SQLAlchemy's greenlets to the coroutine that called into them. When the script exits (SIGINT included)
the report is written: the share of samples by package of the innermost frame, tsunagu's own functions
inclusive, every function inclusive and by own time, and the collapsed stacks (one ``a;b;c count`` line per
stack, for any flame graph tool). Unlike cProfile it counts only CPU, so time a coroutine spends waiting for the
database is not charged to it, and it costs little enough to leave the server's behaviour as it was. Samples
whose leaf is the event loop itself are CPU used by C code in the loop or by another thread (aiosqlite's).
py-spy or pyinstrument would do the same job more thoroughly; they are not among the project's dependencies.
"""

from __future__ import annotations

import argparse
import collections
import runpy
import signal
import sys
from collections.abc import Iterable
from pathlib import Path
from types import FrameType

Frame = tuple[str, str]
"""(file, function)"""

PROJECT = str(Path(__file__).resolve().parent.parent) + "/"
OURS = ("core/", "plugins/", "cli.py")


def area(filename: str) -> str:
    """``tsunagu core``, ``tsunagu plugins``, the installed package, or ``python`` (standard library, C code
    reached from the event loop)."""
    if "site-packages/" in filename:
        return filename.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if filename.startswith(PROJECT):
        relative = filename[len(PROJECT) :]
        return "tsunagu " + relative.split("/", 1)[0].removesuffix(".py")
    return "python"


def _is_ours(filename: str) -> bool:
    return filename.startswith(PROJECT) and filename[len(PROJECT) :].startswith(OURS)  # not .venv/


def _current_greenlet() -> object | None:
    getcurrent = getattr(sys.modules.get("greenlet"), "getcurrent", None)  # None while greenlet is imported
    return getcurrent() if getcurrent is not None else None


class Samples:
    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.stacks: collections.Counter[tuple[Frame, ...]] = collections.Counter()

    def take(self, _signum: int, frame: FrameType | None) -> None:
        stack = []
        runner = _current_greenlet()
        while True:
            while frame is not None:
                stack.append((frame.f_code.co_filename, frame.f_code.co_name))
                frame = frame.f_back
            runner = getattr(runner, "parent", None)
            if runner is None:
                break
            frame = runner.gr_frame  # where the parent waits for this greenlet: the caller's stack
        self.stacks[tuple(reversed(stack))] += 1

    def start(self, *_: object) -> None:
        signal.setitimer(signal.ITIMER_PROF, self.interval, self.interval)

    def pause(self, *_: object) -> None:
        signal.setitimer(signal.ITIMER_PROF, 0, 0)

    def report(self, top: int = 50) -> str:
        total = sum(self.stacks.values()) or 1
        own: collections.Counter[Frame] = collections.Counter()
        inclusive: collections.Counter[Frame] = collections.Counter()
        areas: collections.Counter[str] = collections.Counter()
        for stack, count in self.stacks.items():
            if not stack:
                continue
            own[stack[-1]] += count
            for frame in set(stack):
                inclusive[frame] += count
            areas[area(stack[-1][0])] += count
        ours = ((_name(f), n) for f, n in inclusive.most_common() if _is_ours(f[0]))
        lines = [f"{total} samples of CPU time", "", "== by package of the innermost frame =="]
        lines += _table(areas.most_common(), total)
        lines += ["", "== tsunagu's functions, inclusive =="]
        lines += _table(list(ours)[:top], total)
        lines += ["", "== by function, inclusive =="]
        lines += _table(((_name(f), n) for f, n in inclusive.most_common(top)), total)
        lines += ["", "== by function, own time =="]
        lines += _table(((_name(f), n) for f, n in own.most_common(top)), total)
        lines += ["", "== collapsed stacks =="]
        for stack, count in self.stacks.most_common():
            lines.append(";".join(_name(f) for f in stack) + f" {count}")
        return "\n".join(lines) + "\n"


def _name(frame: Frame) -> str:
    filename, function = frame
    if filename.startswith(PROJECT):
        where = filename[len(PROJECT) :]
    elif "site-packages/" in filename:
        where = filename.split("site-packages/", 1)[1]
    else:
        where = "/".join(Path(filename).parts[-2:])
    return f"{where}:{function}"


def _table(rows: Iterable[tuple[str, int]], total: int) -> list[str]:
    return [f"{100 * n / total:6.1f} %  {n:7d}  {name}" for name, n in rows]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--output", required=True, type=Path)
    parser.add_argument("--interval-ms", type=float, default=1.0)
    parser.add_argument("--now", action="store_true", help="sample from the start (to profile start-up)")
    parser.add_argument("script")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    options = parser.parse_args()
    samples = Samples(options.interval_ms / 1000)
    signal.signal(signal.SIGPROF, samples.take)
    signal.signal(signal.SIGUSR1, samples.start)
    signal.signal(signal.SIGUSR2, samples.pause)
    if options.now:
        samples.start()
    sys.argv = [options.script, *options.args]
    try:
        runpy.run_path(options.script, run_name="__main__")
    except (SystemExit, KeyboardInterrupt):
        pass
    finally:
        samples.pause()
        options.output.write_text(samples.report(), encoding="utf-8")


if __name__ == "__main__":
    main()
