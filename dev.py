"""Developer entry point: one command to get a working .venv and run things in it.

    python3 dev.py setup            create/refresh .venv from the lock files
    python3 dev.py demo [ARGS...]   run `tsunagu demo` (embedded SQLite, sample municipalities)
    python3 dev.py test [ARGS...]   run pytest (no ARGS: the whole suite, over the cores)
    python3 dev.py tsunagu ARGS...  run any `tsunagu` CLI command

Every command first brings .venv up to date, so a fresh clone needs nothing but
Python >= 3.11 and access to PyPI. Installs are hash-checked against
requirements.lock / requirements-build.lock and skipped when those inputs have not
changed. Commands run from the project root and replace this process (exec), so
their exit codes pass straight through.

Standard library only. Up to the version check the file must stay parseable by
old Pythons (3.6+), so they get a clear message instead of a SyntaxError; the
annotations below are only evaluated after that check.
"""

import sys

if sys.version_info < (3, 11):  # noqa: UP036 - dev.py runs under any python3 and must say why it stops
    sys.stderr.write(
        "dev.py: tsunagu needs Python >= 3.11, this is %d.%d (%s)\n"  # noqa: UP031 - parses on old Pythons
        % (sys.version_info[0], sys.version_info[1], sys.executable)
    )
    sys.exit(2)

import hashlib
import os
import shutil
import subprocess
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
PYTHON = BIN / "python"
STAMP = VENV / ".tsunagu-installed"
EXAMPLES = ROOT / "examples"
BUILD_LOCK = ROOT / "requirements-build.lock"
LOCK = ROOT / "requirements.lock"
# The OpenID Provider the tests start (tests/oidc_provider/README.md): npm packages, installed for `test` only.
OIDC_PROVIDER = ROOT / "tests" / "oidc_provider"
NPM_STAMP = OIDC_PROVIDER / "node_modules" / ".tsunagu-installed"

USAGE = __doc__.split("\n\n")[1] + "\n"


def step(message: str) -> None:
    """One short progress line per step, so a slow install never looks hung."""
    print(f"dev.py: {message}", flush=True)


def die(message: str, code: int = 1) -> None:
    sys.stderr.write(f"dev.py: {message}\n")
    sys.exit(code)


def example_projects() -> list[Path]:
    """Vendor example plugins (examples/*/pyproject.toml), installed editable like the core."""
    if not EXAMPLES.is_dir():
        return []
    return sorted(p.parent for p in EXAMPLES.glob("*/pyproject.toml"))


def inputs_digest() -> str:
    """Hash of everything that decides what goes into .venv; a change means reinstall.

    Includes file names (a new example plugin counts), dev.py itself (a change to
    the install recipe counts) and the venv's interpreter (a rebuilt venv counts).
    """
    files = sorted(ROOT.glob("requirements*.lock"))
    files.append(ROOT / "pyproject.toml")
    files.extend(p / "pyproject.toml" for p in example_projects())
    files.append(Path(__file__).resolve())
    files.append(VENV / "pyvenv.cfg")
    h = hashlib.sha256()
    for f in files:
        h.update(str(f.relative_to(ROOT)).encode() + b"\0")
        h.update(f.read_bytes() if f.is_file() else b"<missing>")
        h.update(b"\0")
    return h.hexdigest()


def venv_works() -> bool:
    """A venv left behind by a removed/upgraded interpreter has a dangling python."""
    if not PYTHON.exists():
        return False
    try:
        r = subprocess.run(
            [str(PYTHON), "-c", "import sys; sys.exit(sys.version_info < (3, 11))"],
            capture_output=True,
            timeout=60,
        )
    except OSError:
        return False
    return r.returncode == 0


def pip(description: str, *args: str) -> None:
    """Run pip in the venv quietly; on failure show its full output and stop."""
    step(description)
    cmd = [
        str(PYTHON),
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--no-input",
        "--no-color",
        *args,
    ]
    r = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        sys.stderr.write(r.stdout)
        die(f"failed ({r.returncode}): {' '.join(cmd)}")


def warn_on_lock_drift() -> None:
    """The build lock is compiled against requirements.lock; flag it if they diverge.

    requirements.lock is installed last, so it wins for the application either way,
    but a mismatch means requirements-build.lock should be regenerated.
    """

    def pins(path: Path) -> dict[str, str]:
        out = {}
        for line in path.read_text().splitlines():
            if "==" in line and not line[:1].isspace() and not line.startswith("#"):
                name, _, rest = line.partition("==")
                out[name.strip().lower().replace("_", "-")] = rest.split()[0].rstrip("\\").strip()
        return out

    a, b = pins(BUILD_LOCK), pins(LOCK)
    drift = sorted(n for n in a.keys() & b.keys() if a[n] != b[n])
    if drift:
        sys.stderr.write(
            "dev.py: warning: requirements-build.lock disagrees with requirements.lock on "
            + ", ".join(f"{n} ({a[n]} vs {b[n]})" for n in drift)
            + "; regenerate it (command at the top of requirements-build.in)\n"
        )


def ensure_installed() -> None:
    """Create .venv if needed and install the locked dependencies plus the project, editable."""
    for f in (LOCK, BUILD_LOCK):
        if not f.is_file():
            die(f"missing {f.name}")
    if not venv_works():
        if VENV.exists():
            step("removing broken .venv…")
            shutil.rmtree(VENV)
        step(f"creating .venv with Python {sys.version.split()[0]} ({sys.executable})…")
        venv.EnvBuilder(with_pip=True, clear=True, symlinks=True).create(VENV)

    digest = inputs_digest()
    if STAMP.is_file() and STAMP.read_text().strip() == digest:
        return
    STAMP.unlink(missing_ok=True)  # a half-finished install must not look finished
    warn_on_lock_drift()

    # Build tools first, so the editable installs below can use --no-build-isolation
    # and need no extra download of hatchling into a throwaway build environment.
    pip("installing build tools…", "--require-hashes", "--no-deps", "-r", str(BUILD_LOCK))
    # --no-deps: the lock is complete, so pip must not resolve anything on its own.
    pip("installing locked dependencies…", "--require-hashes", "--no-deps", "-r", str(LOCK))
    pip("installing tsunagu (editable)…", "--no-deps", "--no-build-isolation", "-e", str(ROOT))
    for project in example_projects():
        pip(
            f"installing {project.relative_to(ROOT)} (editable)…",
            "--no-deps",
            "--no-build-isolation",
            "-e",
            str(project),
        )
    STAMP.write_text(digest + "\n")


def npm_digest() -> str:
    h = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        f = OIDC_PROVIDER / name
        h.update(name.encode() + b"\0" + (f.read_bytes() if f.is_file() else b"<missing>") + b"\0")
    return h.hexdigest()


def ensure_test_node_modules() -> None:
    """`npm ci` in tests/oidc_provider when node_modules is missing or package(-lock).json changed.

    The stamp lives inside node_modules, which `npm ci` deletes first, so a half-finished install
    never looks finished. Without npm the step is skipped: those tests then skip, or fail in CI.
    """
    if not (OIDC_PROVIDER / "package-lock.json").is_file():
        return
    digest = npm_digest()
    if NPM_STAMP.is_file() and NPM_STAMP.read_text().strip() == digest:
        return
    npm = shutil.which("npm")
    if npm is None:
        step(
            "npm not found: not installing tests/oidc_provider (the OIDC provider tests will skip, "
            "or fail in CI); install Node.js >= 20 with npm to run them"
        )
        return
    step("installing the OIDC test provider (npm ci in tests/oidc_provider)…")
    cmd = [npm, "ci", "--no-audit", "--no-fund"]
    r = subprocess.run(cmd, cwd=OIDC_PROVIDER, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        sys.stderr.write(r.stdout)
        die(f"failed ({r.returncode}): {' '.join(cmd)} in {OIDC_PROVIDER.relative_to(ROOT)}")
    NPM_STAMP.write_text(digest + "\n")


def run(program: Path, *args: str) -> None:
    """Replace this process so signals and the exit code belong to the real command."""
    if not program.exists():
        die(f"{program.relative_to(ROOT)} not found; try: python3 dev.py setup")
    env = dict(os.environ)
    env["VIRTUAL_ENV"] = str(VENV)  # so subprocesses the command spawns find the venv's tools
    env["PATH"] = str(BIN) + os.pathsep + env.get("PATH", "")
    env.pop("PYTHONHOME", None)
    os.chdir(ROOT)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(str(program), [str(program), *args], env)


def whole_suite_args() -> list[str]:
    """The whole suite spreads over the machine's cores (at most 4), a test file per process: the tests of one
    file share their broker queues and Redis database, so they never run side by side."""
    workers = max(1, min(4, os.cpu_count() or 1))
    return ["-n", str(workers), "--dist", "loadfile"]


def main(argv: list[str]) -> None:
    if not argv or argv[0] not in ("setup", "demo", "test", "tsunagu"):
        sys.stderr.write("usage:\n" + USAGE)
        sys.exit(2)
    command, args = argv[0], argv[1:]
    if command == "setup" and args:
        die("setup takes no arguments", 2)

    ensure_installed()

    if command == "setup":
        step("ready: .venv is up to date")
    elif command == "demo":
        run(BIN / "tsunagu", "demo", *args)
    elif command == "test":
        ensure_test_node_modules()
        run(PYTHON, "-m", "pytest", *(args or whole_suite_args()))
    elif command == "tsunagu":
        run(BIN / "tsunagu", *args)


if __name__ == "__main__":
    main(sys.argv[1:])
