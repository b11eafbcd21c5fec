"""Check Hydra command-line overrides before the run, and suggest the key that was meant.

Hydra refuses ``trainer.max_epoch=3`` with "Key 'max_epoch' is not in struct"
and leaves the user to find the right spelling. Composing the config once up
front (a fraction of a second) lets skinml name the closest keys of that
config node ("did you mean max_epochs?") and exit with the bad-input code.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence

from skinml.errors import ConfigError

_BAD_KEY = re.compile(r"Could not (?:override|append to|delete) '([^']+)'")
#: Flags that make Hydra do something other than one run (sweeps compose per job).
_NOT_A_SINGLE_RUN = {"-m", "--multirun", "-h", "--help", "--hydra-help", "--info", "-i"}
#: Flags that change which config is composed.
_OTHER_CONFIG = {"-cn", "--config-name", "-cp", "--config-path", "-cd", "--config-dir"}


def user_overrides(argv: Sequence[str]) -> list[str]:
    """The ``key=value`` overrides of the job config (not Hydra's own ``hydra.*`` ones)."""
    return [
        a
        for a in argv
        if "=" in a
        and not a.startswith("-")
        and not a.lstrip("+~").startswith(("hydra.", "hydra/"))
    ]


def check_overrides(config_name: str, argv: Sequence[str]) -> None:
    """Compose ``config_name`` with the user's overrides; a misspelt key raises with a suggestion.

    Other composition problems (unknown config group option, bad syntax) are left
    to Hydra, whose own messages already list the choices.

    Raises:
        ConfigError: when an override names a key the config does not have.
    """
    if any(a in _NOT_A_SINGLE_RUN for a in argv):
        return
    if any(a.split("=", 1)[0] in _OTHER_CONFIG for a in argv):
        return  # another primary config or search path: Hydra composes what we cannot see
    overrides = user_overrides(argv)
    if not overrides:
        return
    from hydra import compose, initialize_config_module
    from hydra.errors import HydraException

    with initialize_config_module("skinml.configs", version_base="1.3"):
        try:
            compose(config_name, overrides=overrides)
            return
        except HydraException as exc:
            match = _BAD_KEY.search(str(exc))
            if match is None:
                # Hydra's own message is clear (it lists a group's options); say it once,
                # with the bad-input exit code, instead of after a second composition.
                raise ConfigError(
                    str(exc).strip(), fix="see `--help` for the config groups and options"
                ) from None
            key = match.group(1)
        bad = next((o for o in overrides if o.lstrip("+~").split("=", 1)[0] == key), key)
        others = [o for o in overrides if o != bad]
        try:
            cfg = compose(config_name, overrides=others)
        except HydraException:
            cfg = compose(config_name)
    parent, _, leaf = key.rpartition(".")
    node = cfg.get(parent) if parent else cfg
    keys = [str(k) for k in node] if hasattr(node, "keys") else []
    close = difflib.get_close_matches(leaf, keys, n=3, cutoff=0.6)
    where = f"config node {parent!r}" if parent else "the top level of the config"
    hint = f"did you mean {' or '.join(repr(f'{parent}.{c}' if parent else c) for c in close)}? "
    raise ConfigError(
        f"unknown config key {key!r} in the override {bad!r}",
        expected=f"one of the keys of {where}: {sorted(keys)}",
        fix=(hint if close else "")
        + f"check the spelling, or add a new key with +{key}=... (see --cfg job)",
    )


def check_resume(argv: Sequence[str]) -> None:
    """``resume=auto`` must name the interrupted run's directory, or it silently starts afresh.

    Without ``hydra.run.dir`` Hydra creates a new timestamped directory, which
    never holds a checkpoint, so "auto" would always mean "from scratch".

    Raises:
        ConfigError: ``resume=auto`` without ``hydra.run.dir=...``.
    """
    if "resume=auto" not in argv or any(a in ("-m", "--multirun") for a in argv):
        return
    if any(a.startswith("hydra.run.dir=") for a in argv):
        return
    raise ConfigError(
        "resume=auto was given without hydra.run.dir, so Hydra would create a new, empty run "
        "directory and the run would silently start from scratch",
        expected="resume=auto together with hydra.run.dir=<the interrupted run's directory>",
        fix="add hydra.run.dir=outputs/skinml-train/<RUN> (the directory that holds "
        "checkpoints/last.pt), or pass resume=<path to a checkpoint file>",
    )
