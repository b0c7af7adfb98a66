"""Counting a model's multiply-adds leaves the model as it was."""
import torch

from openstl_unistd.engine.analysis import multiply_accumulates
from openstl_unistd.models import MultiTaskSimVP


def test_counting_leaves_batch_norm_statistics_and_the_mode_as_they_were():
    model = MultiTaskSimVP(['demo_traffic'], model_type='tau', hid_S=8, hid_T=16, N_S=2, N_T=2).train()
    before = {name: buffer.clone() for name, buffer in model.named_buffers()}
    assert any('running_var' in name for name in before)  # the model has statistics a training pass would move
    assert multiply_accumulates(model, 'demo_traffic') > 0
    assert model.training
    assert all(torch.equal(buffer, before[name]) for name, buffer in model.named_buffers())
