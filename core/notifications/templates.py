"""Notification templates: TOML files with ``[ja]`` and ``[en]`` tables of ``subject`` and ``body``.

A template is named ``<plugin>.<name>`` (``core.<name>`` for the core's) and lives in ``<template name>.toml``.
For a municipality, each language of a template is looked up in order:

1. ``municipalities/<slug>/templates/<name>.toml`` — the municipality's override (a language it leaves out
   falls back to the next place);
2. the directories plugins return from ``register_notification_templates`` (a plugin provides only its own
   ``<plugin>.*`` templates);
3. ``core/notifications/templates/``.

``subject`` and ``body`` are Jinja2, rendered in a sandbox with ``StrictUndefined``: a variable missing from the
context is an error naming the template, the language and the variable, never a blank. A ``[sample]`` table
holds a context that ``tsunagu notify check`` renders every template with.
"""

from __future__ import annotations

import re
import threading
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import jinja2
import msgspec
from jinja2.sandbox import ImmutableSandboxedEnvironment

from core.exceptions import ImproperlyConfigured, InvalidInput

CORE_TEMPLATES = Path(__file__).parent / "templates"
TEMPLATE_NAME = re.compile(r"^[a-z][a-z0-9_]{1,39}\.[a-z][a-z0-9_]{0,79}$")
LOCALES = ("ja", "en")
MAX_SUBJECT = 500

_ENVIRONMENT = ImmutableSandboxedEnvironment(
    undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False
)


class TemplateError(ImproperlyConfigured):
    """A template file is missing, malformed, or does not render with the context it was given."""

    title = "Template error"


class _Text(msgspec.Struct, forbid_unknown_fields=True):
    subject: str
    body: str


class _File(msgspec.Struct, forbid_unknown_fields=True):
    ja: _Text | None = None
    en: _Text | None = None
    sample: dict[str, Any] = msgspec.field(default_factory=dict)
    description: str = ""


class TemplateFile(msgspec.Struct, kw_only=True, frozen=True):
    """One parsed and compiled file."""

    name: str
    path: Path
    origin: str
    """``municipality``, ``plugin:<name>`` or ``core``."""
    texts: Mapping[str, tuple[jinja2.Template, jinja2.Template]]
    sample: Mapping[str, Any]
    description: str


class Rendered(msgspec.Struct, kw_only=True, frozen=True):
    locale: str
    subject: str
    body: str


class Resolved(msgspec.Struct, kw_only=True, frozen=True):
    """A template as one municipality sees it: for each language, the file that provides it."""

    name: str
    by_locale: Mapping[str, TemplateFile]

    @property
    def sample(self) -> Mapping[str, Any]:
        """The sample context of the most specific file that has one."""
        for locale in LOCALES:
            found = self.by_locale.get(locale)
            if found is not None and found.sample:
                return found.sample
        return {}

    def locale_for(self, wanted: str | None, fallback: str) -> str:
        """The person's language if the template has it, else the municipality's, else any it has."""
        for locale in (wanted, fallback, *LOCALES):
            if locale in self.by_locale:
                return locale
        raise TemplateError(f"template {self.name} has no language")  # a Resolved always has one

    def render(self, locale: str, context: Mapping[str, Any]) -> Rendered:
        """:raises TemplateError: a variable missing from ``context``, or the sandbox refusing something."""
        source = self.by_locale[locale]
        subject_template, body_template = source.texts[locale]
        try:
            subject = subject_template.render(dict(context))
            body = body_template.render(dict(context))
        except jinja2.UndefinedError as exc:
            raise TemplateError(f"template {self.name} [{locale}] ({source.path}): {exc.message}") from exc
        except jinja2.TemplateError as exc:  # SecurityError and friends
            raise TemplateError(f"template {self.name} [{locale}] ({source.path}): {exc}") from exc
        subject = " ".join(subject.split())[:MAX_SUBJECT]
        return Rendered(locale=locale, subject=subject, body=body.strip("\n"))


_cache: dict[Path, tuple[int, TemplateFile]] = {}
_cache_lock = threading.Lock()


def load_file(path: Path, origin: str) -> TemplateFile:
    """Parse and compile one template file (cached until the file changes).

    :raises TemplateError: naming the file and what is wrong.
    """
    try:
        mtime = path.stat().st_mtime_ns
    except OSError as exc:
        raise TemplateError(f"{path}: cannot read: {exc.strerror}") from exc
    with _cache_lock:
        cached = _cache.get(path)
    if cached is not None and cached[0] == mtime and cached[1].origin == origin:
        return cached[1]
    loaded = _parse(path, origin)
    with _cache_lock:
        _cache[path] = (mtime, loaded)
    return loaded


def _parse(path: Path, origin: str) -> TemplateFile:
    name = path.name.removesuffix(".toml")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        raw = msgspec.convert(data, _File)
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(f"{path}: cannot read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise TemplateError(f"{path}: not valid TOML: {exc}") from exc
    except msgspec.ValidationError as exc:
        raise TemplateError(f"{path}: {exc}") from exc
    texts: dict[str, tuple[jinja2.Template, jinja2.Template]] = {}
    for locale in LOCALES:
        text: _Text | None = getattr(raw, locale)
        if text is None:
            continue
        compiled = []
        for field in ("subject", "body"):
            try:
                compiled.append(_ENVIRONMENT.from_string(getattr(text, field)))
            except jinja2.TemplateSyntaxError as exc:
                raise TemplateError(f"{path}: [{locale}] {field}, line {exc.lineno}: {exc.message}") from exc
        texts[locale] = (compiled[0], compiled[1])
    if not texts:
        raise TemplateError(f"{path}: has neither a [ja] nor an [en] table")
    return TemplateFile(
        name=name, path=path, origin=origin, texts=texts, sample=raw.sample, description=raw.description
    )


class TemplateLibrary:
    """Where templates come from for a deployment: the municipalities folder, plugins' folders, the core's."""

    def __init__(self, municipalities_dir: Path, plugin_dirs: Iterable[tuple[str, Path]]) -> None:
        self.municipalities_dir = municipalities_dir
        self.plugin_dirs = tuple(plugin_dirs)

    def _places(self, slug: str | None) -> list[tuple[str, Path, str | None]]:
        """(origin, folder, the only prefix it may provide or None) in lookup order."""
        places: list[tuple[str, Path, str | None]] = []
        if slug is not None:
            places.append(("municipality", self.municipalities_dir / slug / "templates", None))
        places.extend((f"plugin:{plugin}", folder, f"{plugin}.") for plugin, folder in self.plugin_dirs)
        places.append(("core", CORE_TEMPLATES, "core."))
        return places

    def resolve(self, name: str, slug: str | None) -> Resolved:
        """The template ``name`` as municipality ``slug`` sees it (``None``: without any override).

        :raises InvalidInput: a malformed name.
        :raises TemplateError: no such template, or a file that does not parse.
        """
        if not TEMPLATE_NAME.fullmatch(name):
            raise InvalidInput(f"template must be named <plugin>.<name> in lower case, got {name!r}")
        by_locale: dict[str, TemplateFile] = {}
        for origin, folder, prefix in self._places(slug):
            if prefix is not None and not name.startswith(prefix):
                continue
            path = folder / f"{name}.toml"
            if not path.is_file():
                continue
            found = load_file(path, origin)
            for locale in found.texts:
                by_locale.setdefault(locale, found)
        if not by_locale:
            raise TemplateError(f"no notification template named {name!r}", template=name)
        return Resolved(name=name, by_locale=by_locale)

    def names(self, slug: str | None) -> list[str]:
        """Every template name visible to ``slug``, sorted."""
        found: set[str] = set()
        for _, folder, prefix in self._places(slug):
            if not folder.is_dir():
                continue
            for path in folder.glob("*.toml"):
                name = path.name.removesuffix(".toml")
                if TEMPLATE_NAME.fullmatch(name) and (prefix is None or name.startswith(prefix)):
                    found.add(name)
        return sorted(found)


def check_template(resolved: Resolved, context: Mapping[str, Any] | None = None) -> list[str]:
    """Render every language with ``context`` (default: the sample); the problems found, empty if none."""
    problems = []
    for locale in LOCALES:
        if locale not in resolved.by_locale:
            problems.append(f"{resolved.name}: no [{locale}] table anywhere")
            continue
        try:
            resolved.render(locale, resolved.sample if context is None else context)
        except TemplateError as exc:
            problems.append(exc.detail)
    return problems
