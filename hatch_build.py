"""Install jupyterlab into the build environment only when the lab extension must be built.

hatch-jupyter-builder runs ``npm run build:prod`` in ``labextension/`` (which calls
``jupyter labextension build``) unless the built extension already exists
(``skip-if-exists``). Only that build needs jupyterlab, so an editable install or a wheel
built after ``.ci/build-labextension`` does not pay for installing it in an isolated build
environment (about 35 s), while a build from a clean checkout still gets it.
"""

from __future__ import annotations

from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

BUILT = Path("kimi_jupyter", "labextension", "static", "style.js")


class LabExtensionBuildDependencies(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def dependencies(self) -> list[str]:
        return [] if (Path(self.root) / BUILT).exists() else ["jupyterlab>=4.0,<5"]
