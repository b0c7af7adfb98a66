"""UniSTD(checkpointing=...): the same outputs and gradients for less memory; the option's values."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from openstl_unistd.models import UniSTD

from .conftest import TINY_BACKBONE

ROOT = Path(__file__).resolve().parents[1]
TASKS = [dict(name='full_res', input_frames=3, output_frames=5, channels=2, height=16, width=12, encoder_depth=2),
         'taxibj']


def model(checkpointing):
    torch.manual_seed(0)
    unistd = UniSTD(TASKS, hidden_channels=8, checkpointing=checkpointing, **TINY_BACKBONE).double().train()
    with torch.no_grad():                          # adapters that add something, so that they get gradients
        for name, parameter in unistd.named_parameters():
            if name.endswith('lora_B') or name.endswith('ffn.2.weight'):
                parameter.normal_(0, 0.05)
    return unistd


def outputs_and_gradients(unistd, task):
    torch.manual_seed(1)
    spec = unistd.tasks[task]
    x = torch.randn(3, *spec.input_shape, dtype=torch.float64, requires_grad=True)
    y = unistd(x, task)
    y.square().mean().backward()
    grads = {name: p.grad.clone() for name, p in unistd.named_parameters() if p.grad is not None}
    return y.detach(), x.grad, grads


@pytest.mark.parametrize('checkpointing', [True, ['full_res'], dict(task_ends=True, blocks=True), dict(blocks=True)],
                         ids=['every-task', 'one-task', 'ends-and-blocks', 'blocks'])
def test_outputs_and_gradients_are_those_without_checkpointing(checkpointing):
    reference, checkpointed = model(False), model(checkpointing)
    expected, got = outputs_and_gradients(reference, 'full_res'), outputs_and_gradients(checkpointed, 'full_res')
    assert checkpointed.encoders['full_res'].checkpoint == (checkpointing is not False and (
        not isinstance(checkpointing, dict) or checkpointing.get('task_ends', False)))
    assert checkpointed.backbone.checkpoint == (isinstance(checkpointing, dict) and checkpointing['blocks'])
    torch.testing.assert_close(got[0], expected[0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(got[1], expected[1], rtol=1e-12, atol=1e-12)
    assert got[2].keys() == expected[2].keys() and len(got[2]) > 10
    for name in expected[2]:
        torch.testing.assert_close(got[2][name], expected[2][name], rtol=1e-10, atol=1e-12, msg=name)


def test_without_gradients_nothing_is_recomputed():
    unistd = model(dict(task_ends=True, blocks=True))
    x = torch.randn(2, 3, 2, 16, 12, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(unistd(x, 'full_res'), model(False)(x, 'full_res'), rtol=0, atol=0)


@pytest.mark.parametrize('value, message', [
    ('yes', r"checkpointing: expected False, True \(every task's full-resolution task ends\), a list of task names, "
            r"or a dict .*; got 'yes' \(str\)"),
    (dict(encoders=True), r"got \{'encoders': True\} \(dict\)"),
    (dict(blocks='all'), r"got \{'blocks': 'all'\} \(dict\)"),
    (['taxibj', 3], r"got \['taxibj', 3\] \(list\)"),
    (['sevr'], r"checkpointing: unknown task\(s\) \['sevr'\]; this model serves \['full_res', 'taxibj'\]"),
])
def test_a_bad_value_names_the_option_and_what_it_expects(value, message):
    with pytest.raises(ValueError, match=message):
        UniSTD(TASKS, checkpointing=value, **TINY_BACKBONE)


def test_known_tasks_the_model_does_not_serve_are_ignored():
    unistd = UniSTD(TASKS, hidden_channels=8, checkpointing=['sevir', 'taxibj'], **TINY_BACKBONE)
    assert [unistd.encoders[t].checkpoint for t in unistd.tasks] == [False, True]
    assert [unistd.decoders[t].checkpoint for t in unistd.tasks] == [False, True]


def test_the_config_key_reaches_the_model_and_a_bad_value_is_reported():
    from openstl_unistd.engine.analysis import build_structure
    from openstl_unistd.engine.config import load_config

    tiny = ROOT / 'configs/unistd/tiny_test.py'
    paper = build_structure(load_config(tiny))
    assert [name for name, encoder in paper.encoders.items() if encoder.checkpoint] == ['sevir']
    cfg = load_config(tiny, {'model.checkpointing': True})
    assert all(encoder.checkpoint for encoder in build_structure(cfg).encoders.values())
    cfg = load_config(tiny, {'model.checkpointing': ['human', 'kth']})
    assert [name for name, encoder in build_structure(cfg).encoders.items() if encoder.checkpoint] == ['human', 'kth']
    with pytest.raises(ValueError, match=r"checkpointing: expected .*; got 'yes' \(str\)"):
        build_structure(load_config(tiny, {'model.checkpointing': 'yes'}))


def test_on_the_command_line_a_bad_value_is_one_line_naming_the_option():
    result = subprocess.run([sys.executable, str(ROOT / 'tools/analyze.py'), '-c', 'configs/unistd/tiny_test.py',
                             '--cfg-options', 'model.checkpointing=yes'], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 2 and 'Traceback' not in result.stderr
    assert result.stderr.startswith("error: checkpointing: expected False, True") and "got 'yes' (str)" in result.stderr
