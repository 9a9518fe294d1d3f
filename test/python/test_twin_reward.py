"""gpu/twin_reward.py, loaded the way verl loads a custom reward (by file path) and called
with the keyword arguments of its naive and batch reward managers.

Scenarios:
- the last <answer> span decides, tags in any case, across lines, whitespace and punctuation ignored
- no span, an unclosed span, an empty or punctuation-only span, an empty label: 0.0
- the match is exact after normalisation: extra words score 0.0
- labels that are not strings (a multi query's count) compare by their text
- the batch signature keeps order, takes reward_kwargs, and refuses mismatched lengths
"""

import pytest

from loading import load_file

reward = load_file("gpu/twin_reward.py", "custom_module")

CASES = [
    ("I compare the logos.<answer>yes</answer>", "yes", 1.0),
    ("<ANSWER>  Yes. </Answer>", "yes", 1.0),
    ("<answer>\nno\n</answer>", "No", 1.0),
    ("first <answer>no</answer>, on reflection <answer>yes</answer>", "yes", 1.0),
    ("first <answer>yes</answer>, on reflection <answer>no</answer>", "yes", 0.0),
    ("<answer>y-e-s!</answer>", "yes", 1.0),
    ("<answer>yes</answer>", "Yes!", 1.0),
    ("<answer>3</answer>", 3, 1.0),
    ("<answer>2</answer>", 3, 0.0),
    ("yes", "yes", 0.0),
    ("<answer>yes", "yes", 0.0),
    ("<answer> </answer>", "yes", 0.0),
    ("<answer>...</answer>", "yes", 0.0),
    ("<answer>yes it is</answer>", "yes", 0.0),
    ("<answer>yes <answer>no</answer>", "yes", 0.0),
    ("<answer>yes</answer>", "", 0.0),
    ("<answer>yes</answer>", None, 0.0),
    (None, "yes", 0.0),
    ("", "yes", 0.0),
]


@pytest.mark.parametrize("response,label,expected", CASES)
def test_naive_manager_signature(response, label, expected):
    got = reward.compute_score(data_source="twin", solution_str=response, ground_truth=label, extra_info={"split": "train", "index": 0})
    assert got == expected


def test_batch_manager_signature_keeps_order_and_takes_reward_kwargs():
    responses = [c[0] for c in CASES]
    labels = [c[1] for c in CASES]
    got = reward.compute_score_batched(
        data_sources=["twin"] * len(CASES), solution_strs=responses, ground_truths=labels, extra_infos=[{}] * len(CASES), some_kwarg=1,
    )
    assert got == [c[2] for c in CASES]


def test_batch_manager_refuses_a_label_count_that_differs_from_the_responses():
    with pytest.raises(ValueError, match="2 responses but 1 labels"):
        reward.compute_score_batched(data_sources=["twin", "twin"], solution_strs=["a", "b"], ground_truths=["yes"], extra_infos=[{}, {}])


def test_the_final_answer_is_the_last_span():
    assert reward.final_answer("<answer>a</answer> <Answer> b </ANSWER>") == "b"
    assert reward.final_answer("no tags") is None
    assert reward.normalise("  Same, object!  ") == "same object"
