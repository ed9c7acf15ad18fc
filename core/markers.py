"""The one pair of pluggy markers for the project name ``tsunagu``."""

import pluggy

hookspec = pluggy.HookspecMarker("tsunagu")
hookimpl = pluggy.HookimplMarker("tsunagu")
