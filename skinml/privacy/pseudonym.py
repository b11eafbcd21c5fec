"""HMAC-SHA256 pseudonyms: the same key maps the same identifier to the same pseudonym.

A keyed hash (not a plain hash) is used because identifiers such as hospital
record numbers are guessable; without the key nobody can test a guess. The
key never appears in outputs or logs.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from os import PathLike
from pathlib import Path

from skinml.errors import ConfigError

KEY_ENV_VAR = "SKINML_PSEUDONYM_KEY"
_MIN_KEY_BYTES = 16


def load_key(path: str | PathLike[str] | None = None, *, env_var: str = KEY_ENV_VAR) -> bytes:
    """Read the pseudonymisation key from a file, else from an environment variable.

    Raises:
        ConfigError: when neither is set or the key is shorter than 16 bytes.
    """
    if path is not None:
        key = Path(path).read_bytes().strip()
        source = f"key file {str(path)!r}"
    elif os.environ.get(env_var):
        key = os.environ[env_var].encode("utf-8")
        source = f"environment variable {env_var}"
    else:
        raise ConfigError(
            "no pseudonymisation key given",
            fix=f"pass a key file, or set {env_var}; create one with "
            "`python -c 'import secrets; print(secrets.token_hex(32))' > pseudonym.key` "
            "and keep it inside the centre",
        )
    if len(key) < _MIN_KEY_BYTES:
        raise ConfigError(
            f"the pseudonymisation key from {source} is only {len(key)} bytes",
            expected=f"at least {_MIN_KEY_BYTES} bytes (32 random hex bytes recommended)",
            fix="generate a longer random key",
        )
    return key


def pseudonymise(identifier: object, key: bytes, *, prefix: str = "", length: int = 16) -> str:
    """Map an identifier to a stable pseudonym ``prefix + hex[:length]``.

    Identifiers are stripped of surrounding whitespace first, so ``" 123"`` and
    ``"123"`` link up across deliveries.
    """
    text = str(identifier).strip()
    digest = hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()
    return f"{prefix}{digest[:length]}"
