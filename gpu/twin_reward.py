"""The Twin reward for verl's GRPO: 1.0 when the model's final answer is the label, else 0.0.

The model writes free text and ends with its decision inside <answer>...</answer>. The
decision is the last such span (tags in any case, the span may cross lines); it and the
label are compared after normalisation: surrounding whitespace dropped, lower-cased, every
ASCII punctuation character removed, whitespace dropped again. A response without a span,
or a span or label that is empty after normalisation, scores 0.0.

verl loads this file through `custom_reward_function.path` and calls the function named by
`custom_reward_function.name`:
- `compute_score` for the `naive` reward manager, once per response;
- `compute_score_batched` for the `batch` manager, once per batch.
Extra keyword arguments (`reward_kwargs`, `extra_info`) are accepted and ignored.
"""

from __future__ import annotations

import re
import string
from typing import Any, Iterable, Sequence

# Non-greedy, so each span ends at the first closing tag after its opening one.
_SPAN = re.compile(r"<answer>\s*(.*?)\s*</answer>", re.IGNORECASE | re.DOTALL)
_NO_PUNCTUATION = str.maketrans("", "", string.punctuation)


def final_answer(response: str | None) -> str | None:
    """The text of the last <answer> span, stripped; None when there is none."""
    if not response:
        return None
    spans = _SPAN.findall(response)
    return spans[-1].strip() if spans else None


def normalise(label: str | None) -> str | None:
    """Lower-case, without punctuation or surrounding whitespace; None when nothing is left."""
    if label is None:
        return None
    text = label.strip().lower().translate(_NO_PUNCTUATION).strip()
    return text or None


def score(response: str | None, label: Any) -> float:
    """1.0 when the final answer equals the label after normalisation, else 0.0."""
    predicted = normalise(final_answer(response))
    target = normalise(None if label is None else str(label))
    if predicted is None or target is None:
        return 0.0
    return 1.0 if predicted == target else 0.0


def compute_score(data_source: str | None = None, solution_str: str | None = None, ground_truth: Any = None,
                  extra_info: dict | None = None, **kwargs: Any) -> float:
    """verl's `naive` reward manager signature (keyword arguments, one response)."""
    del data_source, extra_info, kwargs
    return score(solution_str, ground_truth)


def compute_score_batched(data_sources: Sequence[str], solution_strs: Sequence[str], ground_truths: Sequence[Any],
                          extra_infos: Sequence[dict] | Iterable[dict] | None = None, **kwargs: Any) -> list[float]:
    """verl's `batch` reward manager signature: one score per response, in order."""
    del data_sources, extra_infos, kwargs
    if len(solution_strs) != len(ground_truths):
        raise ValueError(f"{len(solution_strs)} responses but {len(ground_truths)} labels; verl passes one label per response")
    return [score(response, label) for response, label in zip(solution_strs, ground_truths)]


__all__ = ["compute_score", "compute_score_batched", "final_answer", "normalise", "score"]
