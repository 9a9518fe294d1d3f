"""gpu/twin_sampler.py, built the way verl builds a data.sampler class:
`BalancedLabelSampler(data_source=dataset, data_config=config.data)`.

Scenarios:
- every train_batch_size run of indices holds each label equally often; an odd size
  alternates the extra one; no index twice in an epoch; a label that runs out ends it
- the same seed gives the same order, the next epoch another; state_dict resumes an epoch
- labels come from verl's RLHFDataset (its dataframe's reward_model column) or rows
- one label only, or no batch size, is refused with what to set
"""

import pytest

from loading import load_file

sampler_module = load_file("gpu/twin_sampler.py", "twin_sampler")
Sampler = sampler_module.BalancedLabelSampler


def rows(yes, no):
    labels = ["yes"] * yes + ["no"] * no
    # Interleaved unevenly, as a dataset's rows would be.
    order = sorted(range(len(labels)), key=lambda i: (i * 7919) % len(labels))
    return [{"reward_model": {"style": "rule", "ground_truth": labels[i]}} for i in order]


def test_every_batch_holds_as_many_yes_as_no():
    data = rows(70, 50)
    s = Sampler(data_source=data, data_config={"train_batch_size": 16, "seed": 3})
    order = list(s)
    labels = sampler_module.labels_of(data)
    assert len(order) == len(s) == 6 * 16  # 50 "no" fill six batches of eight
    assert len(set(order)) == len(order)
    assert all(c == {"yes": 8, "no": 8} for c in sampler_module.check_balanced(order, labels, 16))


def test_an_odd_batch_size_alternates_the_extra_label():
    data = rows(30, 30)
    s = Sampler(data_source=data, data_config={"train_batch_size": 5})
    counts = sampler_module.check_balanced(list(s), sampler_module.labels_of(data), 5)
    assert counts[:4] == [{"no": 3, "yes": 2}, {"no": 2, "yes": 3}, {"no": 3, "yes": 2}, {"no": 2, "yes": 3}]
    assert len(counts) == 12


def test_the_seed_fixes_the_order_and_each_epoch_draws_another():
    data = rows(40, 40)
    a = Sampler(data_source=data, data_config={"train_batch_size": 8, "seed": 1})
    b = Sampler(data_source=data, data_config={"train_batch_size": 8, "seed": 1})
    first, second = list(a), list(a)
    assert first == list(b)
    assert first != second
    assert sorted(first) == sorted(second)
    resumed = Sampler(data_source=data, data_config={"train_batch_size": 8, "seed": 1})
    resumed.load_state_dict({"epoch": 1})
    assert list(resumed) == second
    assert list(Sampler(data_source=data, data_config={"train_batch_size": 8, "seed": 2})) != first


def test_reads_labels_from_an_rlhf_dataset_dataframe():
    class Frame:
        def __init__(self, data):
            self.data = data

        def __getitem__(self, column):
            return [row[column] for row in self.data]

    class RLHFDatasetLike:
        def __init__(self, data):
            self.dataframe = Frame(data)

    data = rows(9, 9)
    s = Sampler(data_source=RLHFDatasetLike(data), data_config={"train_batch_size": 6})
    assert all(c == {"yes": 3, "no": 3} for c in sampler_module.check_balanced(list(s), sampler_module.labels_of(data), 6))


def test_refuses_data_it_cannot_balance_saying_what_to_set():
    with pytest.raises(ValueError, match="two labels or more"):
        Sampler(data_source=rows(10, 0), data_config={"train_batch_size": 4})
    with pytest.raises(ValueError, match="data.train_batch_size"):
        Sampler(data_source=rows(10, 10), data_config={})
