"""The launcher's deploy-time settings, read from its environment once per cold start.

The variables, their ranges and their checks are the contract's
(contract/launcher_settings.py), the same class the stack writes them from.
"""

from __future__ import annotations

from collections.abc import Mapping

from contract.launcher_settings import LauncherSettings as Settings
from contract.launcher_settings import SettingsError
from contract.names import Env

__all__ = ["Settings", "SettingsError", "load"]

_loaded: dict[tuple[str, ...], Settings] = {}
_ENV_NAMES = tuple(v for k, v in vars(Env).items() if not k.startswith("_"))


def load(environ: Mapping[str, str]) -> Settings:
    """Settings.from_environ, once per distinct environment (once per cold start on Lambda)."""
    key = tuple(environ.get(name, "") for name in _ENV_NAMES)
    if key not in _loaded:
        _loaded[key] = Settings.from_environ(environ)
    return _loaded[key]
