"""Every workflow the loaded plugins declare (hook ``register_workflows``), collected once per process.

Collection checks what a single :class:`~core.workflow.Workflow` cannot check by itself: its name starts with
its plugin's, no other workflow has that name or that model, its transitions' permissions are declared and its
templates are its plugin's (or the core's). A plugin that gets any of it wrong is left out as broken, with the
reason, like one that declares a permission wrongly; the others run.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import structlog

from core.exceptions import ImproperlyConfigured, NotFound
from core.workflow.declarations import Workflow

if TYPE_CHECKING:
    import pluggy

    from core.identity.permissions import PermissionRegistry
    from core.plugins.loader import LoadResult

log = structlog.get_logger(__name__)


class WorkflowRegistry:
    """Workflows by name, with the plugin that declared each."""

    def __init__(self, declared: dict[str, list[Workflow]] | None = None) -> None:
        self._workflows: dict[str, Workflow] = {}
        self._owners: dict[str, str] = {}
        for owner, workflows in (declared or {}).items():
            for workflow in workflows:
                self._workflows[workflow.name] = workflow
                self._owners[workflow.name] = owner
        self.broken: dict[str, str] = {}
        """Plugins left out at collection: name -> reason."""

    def __iter__(self) -> Iterator[Workflow]:
        return iter(sorted(self._workflows.values(), key=lambda w: w.name))

    def __len__(self) -> int:
        return len(self._workflows)

    def find(self, name: str) -> Workflow | None:
        return self._workflows.get(name)

    def get(self, name: str) -> Workflow:
        """:raises NotFound: naming the workflows there are."""
        found = self._workflows.get(name)
        if found is None:
            known = ", ".join(sorted(self._workflows)) or "none"
            raise NotFound(f"no workflow named {name!r} (workflows: {known})")
        return found

    def owner(self, name: str) -> str:
        """The plugin that declared workflow ``name``."""
        return self._owners[name]


_REGISTRIES: weakref.WeakKeyDictionary[Any, WorkflowRegistry] = weakref.WeakKeyDictionary()
"""Plugin manager -> its registry: every Platform on one set of loaded plugins (the app's, the job runner's)
shares the registry collected for them."""


def workflows_of(pm: pluggy.PluginManager) -> WorkflowRegistry:
    """The registry :func:`collect_workflows` made for ``pm`` (empty if it never ran)."""
    found = _REGISTRIES.get(pm)
    return found if found is not None else WorkflowRegistry()


def collect_workflows(
    pm: pluggy.PluginManager, loaded: LoadResult, permissions: PermissionRegistry
) -> WorkflowRegistry:
    """Ask every plugin for its workflows; one that declares them wrongly is unregistered and reported broken.

    Call after the permissions are collected (transitions name them); a plugin left out here still has its
    permissions in ``permissions``: collect those again when :attr:`WorkflowRegistry.broken` is not empty.
    """
    declared: dict[str, list[Workflow]] = {}
    names: dict[str, str] = {}
    models: dict[Any, str] = {}
    broken: dict[str, str] = {}
    for (
        impl
    ) in pm.hook.register_workflows.get_hookimpls():  # in loading order: the first to claim a name keeps it
        owner = impl.plugin_name
        try:
            workflows = list(impl.function() or [])
            for workflow in workflows:
                _check(owner, workflow, permissions, names, models)
        except Exception as exc:
            if owner not in loaded.plugins:  # the core's own declarations must be right
                raise
            broken[owner] = loaded.broken[owner] = f"register_workflows: {exc}"
            del loaded.plugins[owner]
            pm.unregister(name=owner)
            log.error("plugin.broken", plugin=owner, reason=loaded.broken[owner])
            for name in [n for n, o in names.items() if o == owner]:
                del names[name]
            for model in [m for m, o in models.items() if o == owner]:
                del models[model]
            continue
        declared[owner] = workflows
    registry = WorkflowRegistry(declared)
    registry.broken = broken
    _REGISTRIES[pm] = registry
    return registry


def _check(
    owner: str,
    workflow: Any,
    permissions: PermissionRegistry,
    names: dict[str, str],
    models: dict[Any, str],
) -> None:
    if not isinstance(workflow, Workflow):
        raise ImproperlyConfigured(
            f"must return core.workflow.Workflow objects, got {type(workflow).__name__}"
        )
    where = f"workflow {workflow.name}"
    if workflow.plugin != owner:
        raise ImproperlyConfigured(f"{where}: name must start with '{owner}.'")
    if workflow.name in names:
        raise ImproperlyConfigured(f"{where}: name already declared by {names[workflow.name]}")
    if workflow.model in models:
        raise ImproperlyConfigured(
            f"{where}: model {workflow.model.__name__} already runs workflow {models[workflow.model]}"
        )
    for step in workflow.transitions:
        if step.permission is not None and step.permission not in permissions.permissions:
            raise ImproperlyConfigured(
                f"{where}: transitions.{step.name}.permission: {step.permission!r} is not declared by any plugin"
            )
        for index, notify in enumerate(step.notify):
            if notify.template.split(".", 1)[0] not in (owner, "core"):
                raise ImproperlyConfigured(
                    f"{where}: transitions.{step.name}.notify[{index}].template: must start with '{owner}.' "
                    f"or 'core.', got {notify.template!r}"
                )
    names[workflow.name] = owner
    models[workflow.model] = workflow.name
