"""The round loop: Flower's strategy decides, skinml records and can resume.

Flower's ``Strategy.start`` runs all rounds in one call; this loop calls the same strategy
methods (``configure_train`` / ``aggregate_train`` / ``configure_evaluate`` /
``aggregate_evaluate``) so that after every completed round it can record which hospital
failed and why, how many bytes went each way, each site's figures, and write
``federation/last_round.pt`` (global arrays, strategy state, history). A restarted server
continues from there; a round that was under way when it stopped is run again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skinml.errors import SkinmlInputError
from skinml.federated.messages import ARRAYS, METRICS, SITE, record_bytes

log = logging.getLogger(__name__)

CHECKPOINT = "last_round.pt"


class FederationError(SkinmlInputError):
    """The federation cannot go on (too few hospitals answered a round)."""


@dataclass
class RoundRecord:
    """What happened in one round; ``sites`` holds each answering site's own figures."""

    round: int
    train: dict[str, float] = field(default_factory=dict)
    evaluate: dict[str, float] = field(default_factory=dict)
    sites: dict[str, dict[str, float]] = field(default_factory=dict)
    failed: list[dict[str, str]] = field(default_factory=list)
    bytes_to_clients: int = 0
    bytes_from_clients: int = 0
    seconds: float = 0.0

    def summary(self) -> dict[str, float]:
        """The server's figures of the round (MLflow ``round/...`` curves)."""
        return {
            **{f"train_{k}" if not k.startswith("train") else k: v for k, v in self.train.items()},
            **self.evaluate,
            "bytes_to_clients": float(self.bytes_to_clients),
            "bytes_from_clients": float(self.bytes_from_clients),
            "bytes_per_round": float(self.bytes_to_clients + self.bytes_from_clients),
            "failed_clients": float(len(self.failed)),
            "round_seconds": self.seconds,
        }


def nodes_needed(strategy: Any, phase: str) -> int:
    """Connected hospitals Flower's sampling waits for before a ``train``/``evaluate`` phase.

    Flower's ``sample_nodes`` polls until ``max(min_available_nodes, min_<phase>_nodes)``
    nodes are connected and never gives up, so a hospital that disconnected for good would
    hang the federation; :func:`wait_for_nodes` bounds that wait.
    """
    inner = getattr(strategy, "strategy", strategy)  # the DP wrapper holds the real one
    if not getattr(inner, f"fraction_{phase}", 1.0):
        return 0  # this phase is off: Flower sends nothing
    return max(
        int(getattr(inner, "min_available_nodes", 1)), int(getattr(inner, f"min_{phase}_nodes", 1))
    )


def wait_for_nodes(
    grid: Any, n: int, timeout: float, sites_by_node: dict[int, str] | None = None, when: str = ""
) -> list[int]:
    """Node ids once ``n`` hospitals are connected; a :class:`FederationError` after ``timeout``.

    Deployment nodes connect in their own time and may drop out (the SuperLink marks a node
    offline after two missed heartbeats, about a minute); the error names the hospitals that
    are not connected when they are known.
    """
    t0, told = time.monotonic(), False
    while True:
        nodes = sorted(grid.get_node_ids())
        if len(nodes) >= n:
            return nodes
        missing = sorted(s for node, s in (sites_by_node or {}).items() if node not in nodes)
        gone = f" (not connected: {', '.join(missing)})" if missing else ""
        if time.monotonic() - t0 > timeout:
            raise FederationError(
                f"{len(nodes)} of the {n} hospitals needed{when} are connected after "
                f"{timeout:.0f} s{gone}",
                fix="start (or restart) a flower-supernode at each hospital (README: Federated "
                "training) and resume with resume=auto, or lower "
                "federation.strategy.min_available_nodes / min_train_nodes / min_evaluate_nodes "
                "so the federation goes on without them",
            )
        if not told:
            log.warning("waiting up to %.0f s for %d hospitals%s%s", timeout, n, when, gone)
            told = True
        time.sleep(1.0)


def site_name(node: int, sites_by_node: dict[int, str]) -> str:
    """A node's hospital, by the name learnt before round 1 where known."""
    return sites_by_node.get(node, f"node {node}")


def site_of(msg: Any, sites_by_node: dict[int, str]) -> str:
    """The site that sent a reply (its own word, else the name learnt before round 1)."""
    if msg.has_content() and SITE in msg.content.config_records:
        return str(msg.content[SITE]["site"])
    return site_name(msg.metadata.src_node_id, sites_by_node)


def failure_record(
    node: int, phase: str, reason: str, sites_by_node: dict[int, str]
) -> dict[str, str]:
    """One ``federation.json`` failure: the hospital (by name where known), phase and reason."""
    return {"site": site_name(node, sites_by_node), "phase": phase, "reason": reason}


def failures(
    sent: list[Any], replies: list[Any], sites_by_node: dict[int, str], phase: str
) -> list[dict[str, str]]:
    """Hospitals whose reply was an error, or that did not reply before the timeout.

    A reply is matched to the message it answers, not to its sender: when a node has gone
    offline the SuperLink itself answers in its place ("Node Unavailable"), from its own
    node id.
    """
    dst_of = {m.metadata.message_id: m.metadata.dst_node_id for m in sent}

    def failure(node: int, reason: str) -> dict[str, str]:
        return failure_record(node, phase, reason, sites_by_node)

    out, answered = [], set()
    for r in replies:
        node = dst_of.get(r.metadata.reply_to_message_id, r.metadata.src_node_id)
        answered.add(node)
        if r.has_error():
            out.append(failure(node, str(r.error.reason)[-500:]))
    silent = "no reply before the round timeout (disconnected or too slow)"
    out += [
        failure(m.metadata.dst_node_id, silent)
        for m in sent
        if m.metadata.dst_node_id not in answered
    ]
    return out


def _site_metrics(replies: list[Any], sites_by_node: dict[int, str], prefix: str) -> dict:
    out: dict[str, dict[str, float]] = {}
    for r in replies:
        if r.has_error() or METRICS not in r.content.metric_records:
            continue
        figures = {
            f"{prefix}{k}" if not k.startswith(prefix) else k: float(v)
            for k, v in r.content[METRICS].items()
            if isinstance(v, int | float) and k not in ("unit-weight",)
        }
        out.setdefault(site_of(r, sites_by_node), {}).update(figures)
    return out


def keep_dtypes(new: Any, old: Any) -> Any:
    """The aggregate in the dtypes of the model sent out: FedAdam/FedYogi compute in float64,
    which would double the bytes of every later message without changing the model."""
    from flwr.app import Array, ArrayRecord

    if all(new[k].dtype == old[k].dtype for k in new if k in old):
        return new
    return ArrayRecord(
        {k: Array(new[k].numpy().astype(old[k].numpy().dtype)) if k in old else new[k] for k in new}
    )


def _check_finite(arrays: Any, rnd: int) -> None:
    """Stop at the round whose aggregate is not finite, instead of exporting NaNs later."""
    import numpy as np

    bad = [k for k, a in arrays.items() if not np.isfinite(a.numpy()).all()]
    if bad:
        raise FederationError(
            f"round {rnd}: the aggregated model has NaN or infinite values in {len(bad)} "
            f"arrays (e.g. {bad[:2]})",
            fix="with differential privacy the noise per value is noise_multiplier x "
            "clipping_norm / hospitals; lower federation.privacy.dp.clipping_norm or the "
            "noise, or lower optim.lr / the FedAdam/FedYogi eta",
        )


def save_state(path: Path, state: dict[str, Any]) -> None:
    """Atomic write of the round checkpoint (a crash mid-write keeps the previous round)."""
    from skinml.training.checkpoint import save_checkpoint

    save_checkpoint(state, path)


def load_state(path: Path) -> dict[str, Any]:
    """The round checkpoint written by :func:`save_state`."""
    from skinml.training.checkpoint import load_checkpoint

    return load_checkpoint(path)


@dataclass
class RoundLoop:
    """Runs rounds ``start..rounds`` of ``strategy`` on ``grid``.

    Args:
        node_timeout: how long a phase waits for the strategy's minimum number of connected
            hospitals (``federation.node_timeout_s``) before the federation stops.
        train_step: optional replacement of the training half of a round (SecAgg+):
            ``(round, arrays, config) -> (arrays, train metrics, site figures, failed,
            bytes to clients, bytes from clients)``.
        on_round_end: called with the :class:`RoundRecord` and the new global arrays.
    """

    grid: Any
    strategy: Any
    rounds: int
    timeout: float
    min_replies: int
    sites_by_node: dict[int, str]
    make_config: Callable[[int], Any]
    node_timeout: float = 600.0
    train_step: Callable[..., tuple] | None = None
    on_round_end: Callable[[RoundRecord, Any], None] | None = None

    def run(self, arrays: Any, start: int = 1) -> Any:
        for rnd in range(start, self.rounds + 1):
            t0 = time.perf_counter()
            record = RoundRecord(round=rnd)
            before = arrays
            self._await_nodes(rnd, "train")
            if self.train_step is not None:
                arrays, train, sites, failed, down, up = self.train_step(
                    rnd, arrays, self.make_config(rnd)
                )
            else:
                arrays, train, sites, failed, down, up = self._train(rnd, arrays)
            arrays = keep_dtypes(arrays, before)
            _check_finite(arrays, rnd)
            record.train, record.failed = train, failed
            record.bytes_to_clients, record.bytes_from_clients = down, up
            for site, figures in sites.items():
                record.sites.setdefault(site, {}).update(figures)
            self._evaluate(rnd, arrays, record)
            record.seconds = time.perf_counter() - t0
            log.info(
                "round %d/%d: %s; failed: %s",
                rnd,
                self.rounds,
                ", ".join(f"{k}={v:.4f}" for k, v in record.evaluate.items()),
                [f["site"] for f in record.failed] or "none",
            )
            if self.on_round_end is not None:
                self.on_round_end(record, arrays)
        return arrays

    def _await_nodes(self, rnd: int, phase: str) -> None:
        needed = nodes_needed(self.strategy, phase)
        if needed:
            wait_for_nodes(self.grid, needed, self.node_timeout, self.sites_by_node,
                           f" for round {rnd} ({phase})")  # fmt: skip

    def _replies(self, messages: list[Any], rnd: int, phase: str) -> tuple[list, list]:
        replies = list(self.grid.send_and_receive(messages, timeout=self.timeout))
        failed = failures(messages, replies, self.sites_by_node, phase)
        ok = [r for r in replies if not r.has_error()]
        if messages and len(ok) < self.min_replies:
            detail = "; ".join(f"{f['site']}: {f['reason'].splitlines()[-1]}" for f in failed)
            raise FederationError(
                f"round {rnd} ({phase}): {len(ok)} of {len(messages)} hospitals answered, "
                f"fewer than federation.min_replies={self.min_replies} ({detail})",
                fix="bring the failed nodes back and resume (resume=auto), or lower "
                "federation.min_replies",
            )
        return replies, failed

    def _train(self, rnd: int, arrays: Any) -> tuple:
        messages = list(
            self.strategy.configure_train(rnd, arrays, self.make_config(rnd), self.grid)
        )
        down = sum(record_bytes(m.content[ARRAYS]) for m in messages)
        replies, failed = self._replies(messages, rnd, "train")
        up = sum(record_bytes(r.content[ARRAYS]) for r in replies if not r.has_error())
        sites = _site_metrics(replies, self.sites_by_node, "train_")
        new, metrics = self.strategy.aggregate_train(rnd, replies)
        if new is None:
            raise FederationError(
                f"round {rnd}: the strategy could not aggregate the hospitals' updates",
                fix="see the server log above for Flower's reason",
            )
        train = {k: v for k, v in dict(metrics or {}).items() if k not in ("unit-weight",)}
        return new, train, sites, failed, down, up

    def _evaluate(self, rnd: int, arrays: Any, record: RoundRecord) -> None:
        self._await_nodes(rnd, "evaluate")
        messages = list(
            self.strategy.configure_evaluate(rnd, arrays, self.make_config(rnd), self.grid)
        )
        if not messages:
            return
        record.bytes_to_clients += sum(record_bytes(m.content[ARRAYS]) for m in messages)
        replies, failed = self._replies(messages, rnd, "evaluate")
        record.failed += failed
        for site, figures in _site_metrics(replies, self.sites_by_node, "val_").items():
            record.sites.setdefault(site, {}).update(figures)
        metrics = self.strategy.aggregate_evaluate(rnd, replies)
        record.evaluate = {
            k: float(v)
            for k, v in dict(metrics or {}).items()
            if k not in ("val_classes_present", "unit-weight", "num-examples")
        }
