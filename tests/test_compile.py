"""``trainer.compile``: regional torch.compile of the shared core, same training as eager, plain checkpoints."""
import csv

import pytest
import torch

from openstl_unistd import load_predictor
from openstl_unistd.engine.config import build_trainer, compile_training, load_config
from openstl_unistd.engine.experiment import train

from .test_training import ROOT, TINY

STEPS = 3


def three_steps(tmp_path, name, compile_):
    cfg = load_config(ROOT / 'configs/unistd/demo.py', {
        **TINY, 'trainer.max_epochs': 1, 'trainer.limit_train_batches': STEPS, 'trainer.limit_val_batches': 0,
        'trainer.compile': compile_})
    work_dir = tmp_path / name
    train(cfg, work_dir, data_root=str(tmp_path / 'data'), test_after=False)
    with open(work_dir / 'logs' / 'metrics.csv', newline='') as file:
        losses = [float(row['train/loss']) for row in csv.DictReader(file) if row.get('train/loss')]
    return losses, work_dir / 'checkpoints' / 'last.ckpt'


def test_compiled_training_gives_the_eager_losses_and_plain_checkpoints(tmp_path):
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    eager, eager_ckpt = three_steps(tmp_path, 'eager', False)
    compiled, compiled_ckpt = three_steps(tmp_path, 'compiled', True)
    assert len(eager) == len(compiled) == STEPS
    assert compiled == pytest.approx(eager, abs=1e-5)
    assert torch._dynamo.utils.counters['stats']['unique_graphs'] >= 1          # the blocks did compile
    checkpoint = torch.load(compiled_ckpt, map_location='cpu', weights_only=False)
    assert not any('_orig_mod' in key for key in checkpoint['state_dict'])
    loaded, reference = load_predictor(compiled_ckpt), load_predictor(eager_ckpt)      # no compile needed to load
    x = torch.randn(2, *loaded.tasks['demo_digits'].input_shape)
    torch.testing.assert_close(loaded.model(x, 'demo_digits'), reference.model(x, 'demo_digits'), rtol=1e-4,
                               atol=1e-4)


def test_compile_defaults_to_cuda_only(tmp_path):
    cfg = load_config(ROOT / 'configs/unistd/demo.py')
    assert cfg.trainer.get('compile') is None
    trainer = build_trainer(cfg, str(tmp_path))
    assert compile_training(cfg, trainer) is False                             # the CPU: off by default
    on = load_config(ROOT / 'configs/unistd/demo.py', {'trainer.compile': True})
    assert compile_training(on, build_trainer(on, str(tmp_path))) is True


def test_a_bad_compile_value_is_named():
    from openstl_unistd.engine.config import check_config

    cfg = load_config(ROOT / 'configs/unistd/demo.py', {'trainer.compile': 'yes'})
    with pytest.raises(ValueError, match=r"trainer.compile: expected True, False or None, got 'yes'"):
        check_config(cfg)


def test_one_compiled_graph_serves_every_token_grid_and_batch_size(tiny_unistd):
    """Dynamic shapes: the regions compile once, whatever the task's grid or the batch size (≥ 2: PyTorch
    specializes sizes of 1, so a batch of one sample adds one graph)."""
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()                   # earlier tests' graphs are counted there too
    torch.manual_seed(0)
    tasks = ['taxibj', 'kth']                              # 8×8 and 16×16 token grids
    model = tiny_unistd(tasks, backbone_kwargs=dict(depth=2))
    inputs = [(torch.randn(batch, *model.tasks[task].input_shape), task) for batch, task in
              ((2, 'taxibj'), (3, 'kth'), (4, 'taxibj'))]
    with torch.no_grad():
        eager = [model(x, task) for x, task in inputs]
    assert model.compile_regions() == ['backbone.blocks.0', 'backbone.blocks.1']
    for (x, task), expected in zip(inputs, eager):
        y = model(x, task)
        y.square().mean().backward()
        torch.testing.assert_close(y, expected, rtol=1e-4, atol=1e-5)
    assert torch._dynamo.utils.counters['stats']['unique_graphs'] == 1
