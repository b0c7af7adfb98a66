import numpy as np
import pytest

from openstl_unistd.datasets.sampler import MultiTaskBatchSampler, task_weights

SIZES = {'a': 600, 'b': 300, 'c': 100}


def test_weights_proportional_uniform_and_temperature():
    np.testing.assert_allclose(task_weights(SIZES), [0.6, 0.3, 0.1])
    np.testing.assert_allclose(task_weights(SIZES, 'uniform'), [1 / 3] * 3)
    hot = task_weights(SIZES, 2.0)
    np.testing.assert_allclose(hot, np.sqrt([600, 300, 100]) / np.sqrt([600, 300, 100]).sum())
    with pytest.raises(ValueError, match="sampling must be 'proportional', 'uniform' or a temperature > 0, got 'even'"):
        task_weights(SIZES, 'even')
    with pytest.raises(ValueError, match=r"task\(s\) \['b'\] have no training samples"):
        task_weights({'a': 3, 'b': 0})


def test_every_batch_holds_one_task_and_valid_indices():
    sampler = MultiTaskBatchSampler(SIZES, batch_size=8, seed=1)
    assert len(sampler) == 1000 // 8
    for batch in sampler:
        tasks = {t for t, _ in batch}
        assert len(batch) == 8 and len(tasks) == 1
        task = tasks.pop()
        assert all(0 <= i < SIZES[task] for _, i in batch)


@pytest.mark.parametrize('sampling,expected', [('proportional', [0.6, 0.3, 0.1]), ('uniform', [1 / 3] * 3)])
def test_task_frequencies_follow_the_weights(sampling, expected):
    sampler = MultiTaskBatchSampler(SIZES, batch_size=2, sampling=sampling, seed=0, steps_per_epoch=3000)
    counts = {name: 0 for name in SIZES}
    for epoch in range(2):
        sampler.set_epoch(epoch)
        for batch in sampler:
            counts[batch[0][0]] += 1
    frequencies = np.array([counts[n] for n in SIZES]) / 6000
    np.testing.assert_allclose(frequencies, expected, atol=0.02)


def test_samples_of_a_task_cover_it_before_repeating():
    sampler = MultiTaskBatchSampler({'a': 40, 'b': 40}, batch_size=4, seed=3, steps_per_epoch=20)
    drawn = {'a': [], 'b': []}
    for batch in sampler:
        drawn[batch[0][0]].extend(i for _, i in batch)
    for indices in drawn.values():
        first = indices[:40]
        assert len(set(first)) == len(first)


def test_ranks_draw_the_same_task_and_disjoint_samples():
    world = 4
    ranks = [MultiTaskBatchSampler(SIZES, batch_size=5, seed=7, rank=r, world_size=world) for r in range(world)]
    assert len({len(s) for s in ranks}) == 1 and len(ranks[0]) == 1000 // 20
    for step_batches in zip(*ranks):
        tasks = {t for batch in step_batches for t, _ in batch}
        assert len(tasks) == 1
        indices = [i for batch in step_batches for _, i in batch]
        assert len(set(indices)) == len(indices) == world * 5


def test_same_seed_same_sequence_and_other_seed_or_epoch_differ():
    def sequence(seed, epoch=0):
        sampler = MultiTaskBatchSampler(SIZES, batch_size=4, seed=seed)
        sampler.set_epoch(epoch)
        return list(sampler)

    assert sequence(5) == sequence(5)
    assert sequence(5) != sequence(6)
    assert sequence(5, epoch=1) != sequence(5, epoch=0)


def test_restored_state_continues_the_same_sequence():
    full = MultiTaskBatchSampler(SIZES, batch_size=4, seed=2)
    full.set_epoch(3)
    expected = list(full)

    interrupted = MultiTaskBatchSampler(SIZES, batch_size=4, seed=2)
    interrupted.set_epoch(3)
    iterator = iter(interrupted)
    head = [next(iterator) for _ in range(17)]
    state = interrupted.state_dict()
    assert state == {'epoch': 3, 'step': 17}

    resumed = MultiTaskBatchSampler(SIZES, batch_size=4, seed=2)
    resumed.load_state_dict(state)
    resumed.set_epoch(3)  # Lightning calls this again on resume: it must not rewind
    assert head + list(resumed) == expected
    resumed.set_epoch(4)
    assert resumed.state_dict() == {'epoch': 4, 'step': 0}


def test_epochs_follow_on_with_or_without_set_epoch():
    """Lightning reaches set_epoch through ``batch_sampler.sampler``; without it, epochs still advance."""
    reference = MultiTaskBatchSampler(SIZES, batch_size=50, seed=4)
    expected = []
    for epoch in range(3):
        reference.set_epoch(epoch)
        expected.append(list(reference))
    plain = MultiTaskBatchSampler(SIZES, batch_size=50, seed=4)
    assert [list(plain) for _ in range(3)] == expected
    driven = MultiTaskBatchSampler(SIZES, batch_size=50, seed=4)
    epochs = []
    for epoch in range(3):
        driven.sampler.set_epoch(epoch)
        epochs.append(list(driven))
    assert epochs == expected and all(len(e) == 20 for e in epochs)
