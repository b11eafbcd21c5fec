"""Flower strategies from the config, with Flower's central differential privacy around them.

``federation.strategy`` is instantiated as written (``_target_`` a class of
``flwr.serverapp.strategy``). With ``federation.privacy.dp.noise_multiplier`` set, the
strategy is wrapped in Flower's ``DifferentialPrivacyServerSideFixedClipping`` with its
RDP accountant, so every round's privacy cost is composed and the resulting epsilon at
``target_delta`` is reported. Client-level DP as Flower implements it averages hospitals
with equal weight (a weighted mean would let a large hospital's update escape the
clipping bound), so the strategy then averages by the constant ``unit-weight``.
"""

from __future__ import annotations

from typing import Any

from skinml.errors import ConfigError
from skinml.federated.messages import UNIT_WEIGHT


def build_strategy(fed_cfg: Any, n_sites: int) -> Any:
    """The configured strategy (DP-wrapped when asked), checked against the number of sites."""
    from hydra.utils import instantiate

    dp = fed_cfg.privacy.dp
    kwargs = {}
    if dp.noise_multiplier is not None:
        kwargs["weighted_by_key"] = UNIT_WEIGHT
    strategy = instantiate(fed_cfg.strategy, **kwargs)
    if strategy.min_available_nodes > n_sites:
        raise ConfigError(
            f"federation.strategy.min_available_nodes={strategy.min_available_nodes} but "
            f"there are {n_sites} sites",
            column="federation.strategy.min_available_nodes",
            fix=f"set it (and min_train_nodes / min_evaluate_nodes) to at most {n_sites}",
        )
    if dp.noise_multiplier is None:
        return strategy
    return dp_wrapped(strategy, dp, n_sites, float(fed_cfg.strategy.fraction_train))


def dp_wrapped(strategy: Any, dp: Any, n_sites: int, fraction: float) -> Any:
    """Flower's server-side fixed-clipping DP wrapper with its RDP accountant."""
    from flwr.serverapp.strategy import DifferentialPrivacyServerSideFixedClipping
    from flwr.supercore.privacy_accounting import (
        NeighboringRelation,
        PrivacyConfig,
        SamplingMethod,
    )
    from flwr.supercore.privacy_accounting.rdp_accountant import RdpAccountant

    sampled = max(int(n_sites * fraction), strategy.min_train_nodes)
    if float(dp.noise_multiplier) <= 0:
        raise ConfigError(
            f"federation.privacy.dp.noise_multiplier={dp.noise_multiplier} gives no privacy",
            column="federation.privacy.dp.noise_multiplier",
            fix="use a value > 0 (1.0 or more for a useful epsilon), or null to turn DP off",
        )
    accountant = RdpAccountant(
        PrivacyConfig(
            target_delta=float(dp.target_delta),
            population_size=n_sites,
            neighboring_relation=NeighboringRelation.ADD_OR_REMOVE_ONE,
            sampling_method=SamplingMethod.NO_AMPLIFICATION,
        )
    )
    return DifferentialPrivacyServerSideFixedClipping(
        strategy,
        noise_multiplier=float(dp.noise_multiplier),
        clipping_norm=float(dp.clipping_norm),
        num_sampled_clients=sampled,
        accountant=accountant,
    )


def privacy_spent(strategy: Any) -> dict[str, Any] | None:
    """Epsilon and delta spent so far (None without DP)."""
    spent_fn = getattr(strategy, "privacy_spent", None)
    spent = spent_fn() if spent_fn is not None else None
    if spent is None:
        return None
    return {
        "epsilon": float(spent.epsilon),
        "delta": float(spent.delta),
        "releases": int(spent.num_releases),
        "accounting": str(spent.accounting_method),
        "noise_multiplier": float(strategy.noise_multiplier),
        "clipping_norm": float(strategy.clipping_norm),
        "unit": "client-level (one hospital's whole data set)",
    }


def base_strategy(strategy: Any) -> Any:
    """The strategy inside a DP wrapper (itself otherwise)."""
    return getattr(strategy, "strategy", strategy)


def strategy_state(strategy: Any) -> dict[str, Any]:
    """What a resumed server needs of the strategy: its data attributes (FedAdam's moments,
    the current arrays) and the DP accountant's composed releases, never its functions."""

    def data(obj: Any) -> dict[str, Any]:
        skip = ("strategy", "accountant")
        return {k: to_plain(v) for k, v in vars(obj).items() if not callable(v) and k not in skip}

    state: dict[str, Any] = {"base": data(base_strategy(strategy))}
    if strategy is not base_strategy(strategy):
        state["wrapper"] = data(strategy)
        accountant = getattr(strategy, "accountant", None)
        if accountant is not None:
            state["accountant"] = accountant.state_dict()
    return state


def restore_strategy(strategy: Any, state: dict[str, Any]) -> Any:
    """Put :func:`strategy_state` back into a freshly built strategy; returns it."""
    vars(base_strategy(strategy)).update({k: from_plain(v) for k, v in state["base"].items()})
    if "wrapper" in state and strategy is not base_strategy(strategy):
        vars(strategy).update({k: from_plain(v) for k, v in state["wrapper"].items()})
    if "accountant" in state:
        strategy.accountant.load_state_dict(state["accountant"])
    return strategy


_ARRAYS = "__flower_arrayrecord__"


def to_plain(value: Any) -> Any:
    """An ``ArrayRecord`` (whose arrays may be views of a received message) as plain numpy
    copies that pickle; anything else unchanged."""
    from flwr.app import ArrayRecord

    if isinstance(value, ArrayRecord):
        return {_ARRAYS: {k: a.numpy().copy() for k, a in value.items()}}
    return value


def from_plain(value: Any) -> Any:
    """The inverse of :func:`to_plain`."""
    from flwr.app import Array, ArrayRecord

    if isinstance(value, dict) and _ARRAYS in value:
        return ArrayRecord({k: Array(v) for k, v in value[_ARRAYS].items()})
    return value
