"""Keyed pseudonymisation of patient and lesion identifiers."""

from skinml.privacy.pseudonym import KEY_ENV_VAR, load_key, pseudonymise

__all__ = ["KEY_ENV_VAR", "load_key", "pseudonymise"]
