"""Check the numbers of a training config before any data is read or a model is built.

``data.image_size=0`` used to surface as Pillow's "height and width must be > 0"
and ``trainer.batch_size=0`` as a ZeroDivisionError, both deep inside the run and
with no config key in the message. This table names the key, the value, what is
allowed and how to set it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from skinml.errors import ConfigError, ManyErrors


def _positive_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 1


def _non_negative_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _positive_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and v > 0


def _fraction(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v < 1


def _image_size(v: Any) -> bool:
    if isinstance(v, list | tuple) or (hasattr(v, "__len__") and not isinstance(v, str)):
        return len(v) == 2 and all(_positive_int(x) for x in v)
    return _positive_int(v)


#: config key -> (check, what is allowed). Keys absent from a config are skipped.
RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "data.image_size": (_image_size, "a whole number of pixels >= 1 (or [height, width])"),
    "data.crop_pct": (_positive_number, "a number > 0 (1.0 = no crop)"),
    "data.decode": (
        lambda v: v in ("fast", "exact"),
        "'fast' (JPEGs decoded at reduced DCT scale) or 'exact' (every pixel)",
    ),
    "data.split.val_fraction": (_fraction, "a fraction in [0, 1)"),
    "data.split.test_fraction": (_fraction, "a fraction in [0, 1)"),
    "trainer.max_epochs": (_positive_int, "a whole number >= 1"),
    "trainer.batch_size": (_positive_int, "a whole number >= 1"),
    "trainer.eval_batch_size": (_positive_int, "a whole number >= 1"),
    "trainer.num_workers": (_non_negative_int, "a whole number >= 0"),
    "optim.lr": (_positive_number, "a number > 0"),
    "seed": (_non_negative_int, "a whole number >= 0"),
    "data.split.seed": (
        lambda v: v is None or _non_negative_int(v),
        "null (the run's seed) or a whole number >= 0",
    ),
}


def check_train_config(cfg: Any) -> None:
    """Refuse out-of-range values of the keys in :data:`RULES`, all of them at once.

    Raises:
        ConfigError: one bad value; ManyErrors: several.
    """
    from omegaconf import OmegaConf

    problems = []
    for key, (ok, allowed) in RULES.items():
        value = OmegaConf.select(cfg, key, default=None)
        if value is None:
            continue
        if not ok(value):
            problems.append(
                ConfigError(
                    f"config value {key}={value!r} is not allowed",
                    expected=allowed,
                    fix=f"set it on the command line, e.g. {key}=<value>, or in the config file",
                )
            )
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise ManyErrors("the training config has out-of-range values", problems)  # type: ignore[arg-type]
