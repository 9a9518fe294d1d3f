"""Batches with as many "yes" as "no" labels, for verl's GRPO on Twin, with upstream verl.

The paper's verl fork has `data.balance_binary_labels`; upstream verl has none, but it takes
a sampler class from the data config:

    data.sampler.class_path=gpu/twin_sampler.py data.sampler.class_name=BalancedLabelSampler

verl builds it as `BalancedLabelSampler(data_source=dataset, data_config=config.data)` and
draws `data.train_batch_size` indices per step. Every run of `train_batch_size` indices this
sampler yields holds each label equally often (for an odd size, the extra one alternates
between labels from batch to batch), in an order drawn from `data.seed` and the epoch; a
label that runs out ends the epoch (verl drops an incomplete last batch anyway).

Labels are each row's `reward_model.ground_truth`, the field the reward compares against.
Any set of labels works; Twin's training rows have two, yes and no.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

try:  # verl checks isinstance(sampler, AbstractSampler); without verl (tests) a plain base will do.
    from verl.experimental.dataset.sampler import AbstractSampler as _Base
except ImportError:  # pragma: no cover - depends on what is installed
    try:
        from torch.utils.data import Sampler as _Base
    except ImportError:
        _Base = object


def labels_of(data_source: Any) -> list[str]:
    """Each row's reward_model.ground_truth: from verl's RLHFDataset (its `dataframe`) or any sequence of rows."""
    frame = getattr(data_source, "dataframe", None)
    if frame is not None:
        return [str(rm["ground_truth"]) for rm in frame["reward_model"]]
    return [str(row["reward_model"]["ground_truth"]) for row in data_source]


def _setting(config: Any, name: str, default: Any = None) -> Any:
    if isinstance(config, Mapping):
        return config.get(name, default)
    getter = getattr(config, "get", None)
    return getter(name, default) if callable(getter) else getattr(config, name, default)


class BalancedLabelSampler(_Base):  # type: ignore[misc, valid-type]
    """Indices in batches of `train_batch_size`, each with every label equally often."""

    def __init__(self, data_source: Any, data_config: Any):
        self.batch_size = int(_setting(data_config, "train_batch_size", 0) or 0)
        if self.batch_size < 1:
            raise ValueError("BalancedLabelSampler needs data.train_batch_size (the rows verl draws per step)")
        self.seed = int(_setting(data_config, "seed", 1) or 0)
        self.by_label: dict[str, list[int]] = {}
        for index, label in enumerate(labels_of(data_source)):
            self.by_label.setdefault(label, []).append(index)
        self.labels = sorted(self.by_label)
        if len(self.labels) < 2:
            raise ValueError(f"BalancedLabelSampler needs rows of two labels or more; the data has {self.labels or 'none'}")
        if self.batch_size < len(self.labels):
            raise ValueError(f"data.train_batch_size {self.batch_size} is smaller than the {len(self.labels)} labels it must balance")
        self.epoch = 0

    def _quota(self, batch: int) -> list[int]:
        """How many of each label batch number `batch` takes; the remainder rotates over the labels."""
        k = len(self.labels)
        base, extra = divmod(self.batch_size, k)
        return [base + (1 if (i - batch) % k < extra else 0) for i in range(k)]

    def batches(self) -> int:
        """Full balanced batches one epoch has."""
        left = [len(self.by_label[label]) for label in self.labels]
        n = 0
        while True:
            quota = self._quota(n)
            if any(have < need for have, need in zip(left, quota)):
                return n
            left = [have - need for have, need in zip(left, quota)]
            n += 1

    def __len__(self) -> int:
        return self.batches() * self.batch_size

    def __iter__(self) -> Iterator[int]:
        rng = random.Random(f"{self.seed}:{self.epoch}")
        self.epoch += 1
        pools = []
        for label in self.labels:
            pool = list(self.by_label[label])
            rng.shuffle(pool)
            pools.append(pool)
        taken = [0] * len(pools)
        for batch in range(self.batches()):
            chosen: list[int] = []
            for i, need in enumerate(self._quota(batch)):
                chosen.extend(pools[i][taken[i]:taken[i] + need])
                taken[i] += need
            rng.shuffle(chosen)
            yield from chosen

    # verl resumes its dataloader from a checkpoint; the epoch decides the next order.
    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        self.epoch = int(state.get("epoch", 0))


def check_balanced(order: Sequence[int], labels: Sequence[str], batch_size: int) -> list[dict[str, int]]:
    """Label counts of each batch of an order (for tests and for checking a run's data)."""
    counts = []
    for start in range(0, len(order) - batch_size + 1, batch_size):
        c: dict[str, int] = {}
        for index in order[start:start + batch_size]:
            c[labels[index]] = c.get(labels[index], 0) + 1
        counts.append(c)
    return counts


__all__ = ["BalancedLabelSampler", "check_balanced", "labels_of"]
