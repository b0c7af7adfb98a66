import pytest
import torch

from openstl_unistd.datasets.datamodule import MultiTaskDataModule
from openstl_unistd.tasks import DEMO_TASKS, PAPER_TASKS, TASK_SETS

DEMO = [DEMO_TASKS[name] for name in TASK_SETS['multi_demo']]
SMALL = {spec.name: dict(num_samples=24) for spec in DEMO}


def test_training_batches_hold_one_task_and_evaluation_has_a_loader_per_task(tmp_path):
    module = MultiTaskDataModule(DEMO, tmp_path, SMALL, batch_size=4, val_batch_size=5)
    module.setup('fit')
    loader = module.train_dataloader()
    assert len(loader) == 72 // 4
    seen = set()
    for batch in loader:
        spec = DEMO_TASKS[batch['task']]
        assert batch['x'].shape == (4, *spec.input_shape) and batch['y'].shape == (4, *spec.output_shape)
        assert batch['x'].dtype == torch.float32
        seen.add(batch['task'])
    assert seen == {spec.name for spec in DEMO}
    val = module.val_dataloader()
    assert [next(iter(v))['task'] for v in val] == module.task_names
    assert [len(v.dataset) for v in val] == [24, 24, 24]
    assert next(iter(val[0]))['x'].shape[0] == 5


def test_workers_give_the_same_batches_as_the_main_process(tmp_path):
    plain = MultiTaskDataModule(DEMO, tmp_path, SMALL, batch_size=4, seed=1)
    workers = MultiTaskDataModule(DEMO, tmp_path, SMALL, batch_size=4, seed=1, num_workers=2)
    for a, b in zip(plain.train_dataloader(), workers.train_dataloader()):
        assert a['task'] == b['task'] and torch.equal(a['x'], b['x'])


def test_sampler_position_survives_the_checkpoint_state(tmp_path):
    module = MultiTaskDataModule(DEMO, tmp_path, SMALL, batch_size=4, seed=2)
    expected = [b['task'] for b in module.train_dataloader()]
    iterator = iter(module.train_dataloader())
    for _ in range(5):
        next(iterator)
    state = module.state_dict()
    restored = MultiTaskDataModule(DEMO, tmp_path, SMALL, batch_size=4, seed=2)
    restored.load_state_dict(state)
    assert [b['task'] for b in restored.train_dataloader()] == expected[5:]


def test_every_missing_dataset_is_listed_in_one_error(tmp_path):
    module = MultiTaskDataModule([PAPER_TASKS['taxibj'], PAPER_TASKS['mmnist'], DEMO_TASKS['demo_traffic']],
                                 tmp_path, {'demo_traffic': dict(num_samples=4)})
    with pytest.raises(FileNotFoundError) as error:
        module.setup('fit')
    message = str(error.value)
    assert message.startswith("2 dataset file(s) missing under data_root=") and message.count('\n  - ') == 2
    assert 'taxibj/dataset.npz not found' in message and 'download_taxibj.sh' in message
    assert 'moving_mnist' in message and 'download_mmnist.sh' in message


def test_options_of_unknown_tasks_are_rejected_and_of_unused_known_tasks_ignored(tmp_path):
    module = MultiTaskDataModule(DEMO, tmp_path, {'kth': {}, 'demo_traffic': dict(num_samples=3)})
    assert module.dataset_options == {'demo_traffic': dict(num_samples=3)}
    with pytest.raises(ValueError, match=r"data options given for task\(s\) \['khh'\] that are neither in the task"):
        MultiTaskDataModule(DEMO, tmp_path, {'khh': {}})


def test_joint_loader_visits_every_sample_once_in_single_task_batches(tmp_path):
    module = MultiTaskDataModule(DEMO, tmp_path, {name: dict(num_samples=7) for name in DEMO_TASKS}, val_batch_size=3)
    seen = []
    for batch in module.joint_loader('test'):
        seen.append((batch['task'], batch['x'].shape[0]))
    assert [t for t, _ in seen] == ['demo_digits'] * 3 + ['demo_advection'] * 3 + ['demo_traffic'] * 3
    assert [n for _, n in seen] == [3, 3, 1] * 3
