"""Forecasting with a trained model: horizons by rollout, physical units, errors (load_predictor / Predictor)."""
from pathlib import Path

import numpy as np
import pytest
import torch

from openstl_unistd.core.scaling import Scaling
from openstl_unistd.datasets.custom import ArrayTask
from openstl_unistd.datasets.demo import DemoDigits, DemoWave
from openstl_unistd.inference.model_card import CARD_KEY
from openstl_unistd.inference.predictor import Predictor

from .trained import build, make_card, save_checkpoint
from .physical_values import denormalize

RAIN = dict(name='rain', input_frames=4, output_frames=3, channels=2, height=16, width=16, encoder_depth=1)


@pytest.mark.parametrize('task,decode', [('demo_wave', 'rollout'), ('rain', 'rollout'), ('rain', 'direct')])
def test_horizon_of_three_forecasts_equals_three_chained_calls(task, decode):
    card = make_card(['demo_wave', RAIN], decode=decode)
    model = build(card).double()
    predictor = Predictor(model, card)
    spec = card.task(task)
    x = np.random.default_rng(0).uniform(0, 1, (3, spec.input_frames + 2, *spec.input_shape[1:]))
    got = predictor.predict(x, task, horizon=3 * spec.output_frames, precision='64')

    history = torch.from_numpy(x[:, -spec.input_frames:])
    chained = []
    with torch.no_grad():
        for _ in range(3):
            y = model(history[:, -spec.input_frames:], task)
            chained.append(y)
            history = torch.cat([history, y], dim=1)
    expected = torch.cat(chained, dim=1).numpy()
    assert got.dtype == np.float64 and got.shape == (3, 3 * spec.output_frames, *spec.input_shape[1:])
    assert np.array_equal(got, expected)
    # a horizon inside T' is the first frames of one call; smaller batches give the same samples (up to the
    # summation order of other matrix shapes)
    assert np.array_equal(predictor.predict(x, task, horizon=2, precision='64'), expected[:, :2])
    np.testing.assert_allclose(predictor.predict(x, task, horizon=5, precision='64', batch_size=2), expected[:, :5],
                               rtol=0, atol=1e-12)


def _round_trip(predictor, dataset, raw_inputs, task):
    """Predictor on physical inputs vs the model on the loader's samples, mapped back by the loader."""
    x = torch.stack([dataset[i][0] for i in range(len(raw_inputs))])
    with torch.no_grad():
        expected = denormalize(dataset, predictor.model(x, task))
    return predictor.predict(raw_inputs, task, batch_size=len(raw_inputs)), expected.numpy()


def test_physical_units_round_trip_through_the_demo_loaders(tmp_path):
    digits = DemoDigits(tmp_path, 'test', num_samples=3)
    wave = DemoWave(tmp_path, 'test', num_samples=3)
    card = make_card(['demo_digits', 'demo_wave'],
                     {'demo_digits': digits.scaling, 'demo_wave': wave.scaling})
    assert card.scalings['demo_digits'] == Scaling((0.0,), (255.0,))
    assert card.scalings['demo_wave'] == Scaling((-1.0,), (2.0,))
    predictor = Predictor(build(card), card)

    raw = np.load(digits.path)[:, :5]                           # the file's own uint8 values: physical units
    got, expected = _round_trip(predictor, digits, raw, 'demo_digits')
    assert got.shape == (3, 5, 1, 32, 32) and np.array_equal(got, expected)

    physical = np.load(wave.path)[:, :4].astype(np.float32) / 255 * 2 - 1   # the wave field u in [-1, 1]
    got, expected = _round_trip(predictor, wave, physical, 'demo_wave')
    # (u + 1) / 2 recovers the loader's input up to float32 rounding of u, hence not bit-exact
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    assert np.abs(expected).max() > 0.1 and (expected < 0).any()


def test_physical_units_round_trip_through_a_custom_array_task(tmp_path):
    values = np.random.default_rng(1).normal(280.0, 7.0, (20, 7, 2, 16, 16)).astype(np.float32)
    np.save(tmp_path / 'rain.npy', values)
    dataset = ArrayTask(tmp_path, 'test', 4, 3, path='rain.npy')
    card = make_card([RAIN], {'rain': dataset.scaling})
    assert card.scalings['rain'].mean == tuple(float(v) for v in values[:16].min(axis=(0, 1, 3, 4)))  # per channel
    predictor = Predictor(build(card), card)
    raw = values[dataset.offset:dataset.offset + 2, :4]
    got, expected = _round_trip(predictor, dataset, raw, 'rain')
    assert np.array_equal(got, expected)


def test_per_channel_scaling_maps_each_channel_with_its_own_values():
    scaling = Scaling.of([10.0, -3.0], [2.0, 0.5])
    x = torch.tensor([[[[10.0]], [[-3.0]]], [[[14.0]], [[-2.0]]]])          # (T=2, C=2, 1, 1)
    model_range = scaling.to_model(x)
    assert torch.equal(model_range.flatten(), torch.tensor([0.0, 0.0, 2.0, 2.0]))
    assert torch.equal(scaling.to_physical(model_range), x)
    card = make_card([RAIN], {'rain': scaling})
    predictor = Predictor(build(card), card)
    inputs = np.random.default_rng(2).normal(0, 1, (2, 4, 2, 16, 16)).astype(np.float32)
    with torch.no_grad():
        expected = scaling.to_physical(predictor.model(scaling.to_model(torch.from_numpy(inputs)), 'rain'))
    assert np.array_equal(predictor.predict(inputs, 'rain'), expected.numpy())
    with pytest.raises(ValueError, match="task 'rain': its scaling has 3 channels, the task has 2"):
        make_card([RAIN], {'rain': Scaling.of([0, 0, 0], [1, 1, 1])})


def test_inputs_of_the_wrong_shape_or_task_are_named():
    card = make_card([RAIN])
    predictor = Predictor(build(card), card)
    with pytest.raises(ValueError, match=r"task 'rain' takes \(N, T, C, H, W\) = \(N, ≥4, 2, 16, 16\), got "
                                         r"\(1, 4, 3, 16, 16\): C is 3, expected 2"):
        predictor.predict(np.zeros((1, 4, 3, 16, 16)), 'rain')
    with pytest.raises(ValueError, match=r'T is 2, expected at least 4'):
        predictor.predict(np.zeros((1, 2, 2, 16, 16)), 'rain')
    with pytest.raises(ValueError, match=r"unknown task 'snow': this model serves \['rain'\]"):
        predictor.predict(np.zeros((1, 4, 2, 16, 16)), 'snow')
    with pytest.raises(ValueError, match='horizon must be a positive integer, got 0'):
        predictor.predict(np.zeros((1, 4, 2, 16, 16)), 'rain', horizon=0)
    with pytest.raises(ValueError, match=r"precision '8' is not supported"):
        predictor.predict(np.zeros((1, 4, 2, 16, 16)), 'rain', precision='8')


def test_one_sample_tensors_and_mixed_precision():
    card = make_card([RAIN])
    predictor = Predictor(build(card), card)
    x = torch.rand(6, 2, 16, 16)
    y = predictor.predict(x, 'rain', horizon=5)
    assert isinstance(y, torch.Tensor) and y.shape == (5, 2, 16, 16) and y.dtype == torch.float32
    bf16 = predictor.predict(x, 'rain', horizon=5, precision='bf16-mixed')
    assert bf16.dtype == torch.float32 and not torch.equal(bf16, y)
    torch.testing.assert_close(bf16, y, rtol=0.1, atol=0.1)


def test_load_model_from_a_checkpoint_with_and_without_card(tmp_path):
    from openstl_unistd import load_predictor

    card = make_card([RAIN], {'rain': Scaling.of(3.0, 4.0)})
    model = build(card)
    path = save_checkpoint(model, card, tmp_path / 'best.ckpt')
    assert set(torch.load(path, weights_only=True)[CARD_KEY]) >= {'tasks', 'scalings', 'model', 'backbone'}
    loaded = load_predictor(path)
    assert loaded.tasks == {'rain': card.task('rain')} and loaded.scalings == {'rain': Scaling.of(3.0, 4.0)}
    assert loaded.options['model']['hidden_channels'] == 8 and loaded.options['method'] == {'type': 'unistd'}
    x = np.random.default_rng(3).normal(3, 4, (2, 4, 2, 16, 16)).astype(np.float32)
    expected = Predictor(model, card).predict(x, 'rain', horizon=7)
    assert np.array_equal(loaded.predict(x, 'rain', horizon=7), expected)

    bare = save_checkpoint(model, None, tmp_path / 'bare.ckpt')
    with pytest.raises(ValueError, match='bare.ckpt: the checkpoint holds no model card'):
        load_predictor(bare)


def test_a_config_given_with_a_checkpoint_that_has_a_card_is_ignored_with_a_warning(tmp_path):
    from openstl_unistd import load_predictor

    card = make_card([RAIN], {'rain': Scaling.of(3.0, 4.0)})
    model = build(card)
    path = save_checkpoint(model, card, tmp_path / 'best.ckpt')
    config = Path(__file__).resolve().parents[1] / 'configs/unistd/demo.py'    # other tasks: would not fit
    with pytest.warns(UserWarning) as caught:
        loaded = load_predictor(path, config, cfg_options={'model.hidden_channels': 16})
    assert len(caught) == 1 and str(caught[0].message) == (
        f"{path}: config {str(config)!r} ignored: the checkpoint carries its model card, which is used "
        '(a config is only for checkpoints without one)')
    assert loaded.card == card
    x = np.random.default_rng(5).normal(3, 4, (2, 4, 2, 16, 16)).astype(np.float32)
    assert np.array_equal(loaded.predict(x, 'rain'), load_predictor(path).predict(x, 'rain'))


def test_a_checkpoint_without_card_loads_with_its_config_and_data(tmp_path):
    from openstl_unistd import load_predictor
    from openstl_unistd.engine.config import build_model, build_tasks, load_config

    config = Path(__file__).resolve().parents[1] / 'configs/unistd/demo.py'
    options = {'tasks': ['demo_traffic'], 'model.backbone_kwargs.depth': 1, 'model.hidden_channels': 8,
               'data.datasets': {'demo_traffic': dict(num_samples=4)}}
    cfg = load_config(config, options)
    model = build_model(cfg, build_tasks(cfg))
    bare = save_checkpoint(model, None, tmp_path / 'bare.ckpt')
    loaded = load_predictor(bare, config, cfg_options=options, data_root=str(tmp_path / 'data'))
    assert loaded.scalings == {'demo_traffic': Scaling.of(0.0, 255.0)}                   # from the test data
    assert loaded.card.model['backbone_kwargs'] == {'depth': 1}
    x = np.random.default_rng(4).uniform(0, 255, (2, 4, 2, 32, 32)).astype(np.float32)
    expected = Predictor(model, loaded.card).predict(x, 'demo_traffic')
    assert np.array_equal(loaded.predict(x, 'demo_traffic'), expected)
    with pytest.raises(ValueError, match='bare.ckpt: its tensors do not fit the model of the config'):
        load_predictor(bare, config, cfg_options={**options, 'model.hidden_channels': 16})


# --- what predict reads and what it returns ------------------------------------------------------

@pytest.fixture(scope='module')
def rain_predictor():
    card = make_card([RAIN])
    return Predictor(build(card), card)


def _frames(count=3, frames=4):
    return np.random.default_rng(6).normal(0, 1, (count, frames, 2, 16, 16)).astype(np.float32)


@pytest.mark.parametrize('value', [np.nan, np.inf])
def test_non_finite_inputs_are_refused_naming_the_array_and_the_sample(rain_predictor, value):
    x = _frames()
    x[1, 2, 0, 3, 4] = value
    with pytest.raises(ValueError, match=r"^'x' holds NaN or ±Inf in 1 sample\(s\): sample 1 \(first: 1 non-finite "
                                         r'value\(s\) .*at index = \(2, 0, 3, 4\)\)'):
        rain_predictor.predict(x, 'rain')
    with pytest.raises(ValueError, match=r"^'x' holds NaN or ±Inf in 1 sample\(s\): sample 1"):
        rain_predictor.predict(torch.from_numpy(x), 'rain')
    longer = np.concatenate([_frames(3, 2), x], axis=1)                 # 6 frames given, the last 4 read
    with pytest.raises(ValueError, match=r"^'x' frames 2–5 \(the last 4, which the model reads\) holds NaN .*"
                                         r'sample 1 .*at index = \(2, 0, 3, 4\)'):
        rain_predictor.predict(longer, 'rain')
    longer[1, 2:] = 0.0
    longer[0, 0] = value                                                # a frame that is not read
    assert np.isfinite(rain_predictor.predict(longer, 'rain')).all()


@pytest.mark.parametrize('x,message', [
    (np.zeros((0, 4, 2, 16, 16), np.float32), r"^'x' is empty: shape \(0, 4, 2, 16, 16\), expected at least one value"),
    (np.zeros((2, 4, 2, 16, 16), bool), r"^'x' has dtype bool \(booleans\), expected real numbers \(integers or floats\)"),
    (np.full((2, 4, 2, 16, 16), 'a'), r"^'x' has dtype <U1 \(strings\), expected real numbers"),
    (np.zeros((2, 4, 2, 16, 16), np.complex64), r"^'x' has dtype complex64 \(complex numbers\), expected real numbers"),
    (torch.zeros((2, 4, 2, 16, 16), dtype=torch.bool), r"^'x' has dtype torch.bool \(booleans\), expected real numbers"),
])
def test_empty_and_non_real_inputs_are_refused_naming_the_array_and_dtype(rain_predictor, x, message):
    with pytest.raises(ValueError, match=message):
        rain_predictor.predict(x, 'rain')


def test_integer_inputs_are_read_as_numbers(rain_predictor):
    x = np.random.default_rng(7).integers(0, 255, (2, 4, 2, 16, 16)).astype(np.uint8)
    assert np.array_equal(rain_predictor.predict(x, 'rain'), rain_predictor.predict(x.astype(np.float32), 'rain'))


def test_a_non_finite_forecast_is_an_error_not_a_result():
    card = make_card([RAIN])
    model = build(card)
    with torch.no_grad():
        next(model.decoders['rain'].parameters()).fill_(float('inf'))
    with pytest.raises(FloatingPointError, match=r"^'x': the forecast of task 'rain' holds NaN or ±Inf in 3 of 3 "
                                                 r'samples \(0, 1, 2\) though the inputs are finite'):
        Predictor(model, card).predict(_frames(), 'rain')


@pytest.mark.parametrize('device,message', [
    ('tpu', r"^device: expected 'cpu', 'auto' or one of torch's devices on this machine \(.*\), got 'tpu'"),
    ('cuda:99', r"^device: expected 'cpu', 'auto' or one of torch's devices on this machine \(.*\), got 'cuda:99'"),
    ('meta', r"^device: expected .* got 'meta'"),
])
def test_a_device_torch_does_not_have_is_named(device, message):
    card = make_card([RAIN])
    with pytest.raises(ValueError, match=message):
        Predictor(build(card), card, device=device)
