import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from openstl_unistd.core.metrics import ForecastMetrics
from openstl_unistd.core.metrics import image
from openstl_unistd.core.scaling import Scaling
from openstl_unistd.core.metrics.weather import contingency, nino34_index, nino_lead_weights


def random_pair(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    true = torch.rand(shape, generator=g, dtype=torch.float64)
    pred = (true + 0.2 * torch.randn(shape, generator=g, dtype=torch.float64)).clamp(-0.1, 1.1)
    return pred, true


@pytest.mark.parametrize('shape', [(3, 1, 16, 16), (2, 3, 32, 40), (2, 2, 9, 64)])
def test_ssim_equals_scikit_image(shape):
    pred, true = random_pair(shape)
    ours = image.ssim(pred.clamp(0, 1), true, data_range=1.0)
    for i in range(shape[0]):
        reference = structural_similarity(true[i].numpy(), pred[i].clamp(0, 1).numpy(), data_range=1.0, channel_axis=0)
        assert float(ours[i]) == pytest.approx(reference, abs=1e-10)
    ours32 = image.ssim(pred.float().clamp(0, 1), true.float(), data_range=2.0)
    reference = structural_similarity(true[0].numpy(), pred[0].clamp(0, 1).numpy(), data_range=2.0, channel_axis=0)
    assert float(ours32[0]) == pytest.approx(reference, abs=1e-4)


def test_psnr_equals_scikit_image_and_caps_perfect_frames():
    pred, true = random_pair((4, 2, 12, 12), seed=1)
    ours = image.psnr(pred.clamp(0, 1), true)
    for i in range(4):
        reference = peak_signal_noise_ratio(true[i].numpy(), pred[i].clamp(0, 1).numpy(), data_range=1.0)
        assert float(ours[i]) == pytest.approx(reference, abs=1e-10)
    assert float(image.psnr(true, true)[0]) == pytest.approx(100.0)


def openstl_reference(pred, true):
    """OpenSTL's definitions, written out with numpy on (B, T, C, H, W) arrays."""
    p, t = pred.numpy(), true.numpy()
    clipped = np.clip(p, 0, 1)
    psnr = np.mean([20 * np.log10(1 / np.sqrt(np.mean((clipped[b, f] - t[b, f]) ** 2)))
                    for b in range(p.shape[0]) for f in range(p.shape[1])])
    snr = np.mean([10 * np.log10(np.mean(t[b, f] ** 2) / np.mean((t[b, f] - clipped[b, f]) ** 2))
                   for b in range(p.shape[0]) for f in range(p.shape[1])])
    ssim = np.mean([structural_similarity(t[b, f], clipped[b, f], data_range=1.0, channel_axis=0)
                    for b in range(p.shape[0]) for f in range(p.shape[1])])
    mse = np.mean((p - t) ** 2, axis=(0, 1)).sum()
    return dict(mse=mse, mae=np.mean(np.abs(p - t), axis=(0, 1)).sum(), rmse=np.sqrt(mse), psnr=psnr, ssim=ssim, snr=snr)


def test_streamed_image_metrics_equal_openstl_definitions_on_the_whole_set():
    pred, true = random_pair((10, 3, 2, 16, 16), seed=2)
    metric = ForecastMetrics(['mse', 'mae', 'rmse', 'psnr', 'ssim', 'snr'])
    for start in (0, 3, 4, 8):  # uneven batches
        stop = {0: 3, 3: 4, 4: 8, 8: 10}[start]
        metric.update(pred[start:stop], true[start:stop])
    ours = metric.compute()
    reference = openstl_reference(pred, true)
    for name, value in reference.items():
        assert ours[name] == pytest.approx(value, rel=1e-5), name
    once = ForecastMetrics(['mse', 'mae', 'rmse', 'psnr', 'ssim', 'snr'])
    once.update(pred, true)
    for name, value in once.compute().items():
        assert ours[name] == pytest.approx(value, rel=1e-12), name


def test_csi_matches_a_hand_counted_table():
    # physical = model · 255: events at threshold 74 are pixels with VIL ≥ 74
    true_vil = torch.tensor([[10., 80., 80., 140.], [200., 0., 74., 74.]])
    pred_vil = torch.tensor([[80., 80., 10., 140.], [150., 0., 73., 74.]])
    counts = contingency(pred_vil, true_vil, [74, 133])
    # ≥74: true events at 80, 80, 140, 200, 74, 74 → predicted 80, -, 140, 150, -, 74 → h=4, m=2; fa: 80 over 10 → 1
    # ≥133: true events 140, 200 → both predicted (140, 150) → h=2, m=0, fa=0
    assert counts.tolist() == [[4, 2, 1], [2, 0, 0]]
    metric = ForecastMetrics(['csi'], Scaling.of(0.0, 255.0), csi_thresholds=(74, 133, 219))
    metric.update((pred_vil / 255).view(1, 1, 1, 2, 4), (true_vil / 255).view(1, 1, 1, 2, 4))
    scores = metric.compute()
    assert scores['csi_74'] == pytest.approx(4 / 7) and scores['csi_133'] == pytest.approx(1.0)
    assert math.isnan(scores['csi_219']) and scores['csi_m'] == pytest.approx((4 / 7 + 1) / 2)


def test_nino_index_uses_the_box_and_a_three_month_mean():
    sst = torch.zeros(1, 5, 1, 24, 48)
    sst[0, :, 0, 10:13, 19:30] = torch.tensor([1., 2., 3., 4., 5.]).view(5, 1, 1)
    sst[0, :, 0, 9, 19:30] = 100.0  # outside the box
    assert nino34_index(sst).tolist() == [[2.0, 3.0, 4.0]]


def test_nino_scores_equal_numpy_corrcoef_streamed_over_batches():
    g = np.random.default_rng(3)
    true = g.normal(0, 1, (40, 6, 1, 24, 48))
    pred = true + g.normal(0, 0.8, true.shape)
    mean, std = -16.549, 26.748
    metric = ForecastMetrics(['nino'], Scaling.of(mean, std), output_frames=6)
    for batch in np.array_split(np.arange(40), 7):
        metric.update(torch.tensor((pred[batch] - mean) / std), torch.tensor((true[batch] - mean) / std))
    scores = metric.compute()
    index_p = nino34_index(torch.tensor(pred)).numpy()
    index_t = nino34_index(torch.tensor(true)).numpy()
    correlations = np.array([np.corrcoef(index_p[:, lead], index_t[:, lead])[0, 1] for lead in range(4)])
    assert scores['c_nino34_m'] == pytest.approx(correlations.mean(), abs=1e-6)
    weights = np.array([1.5, 1.5, 1.5, 1.5]) * np.log([1, 2, 3, 4])
    assert scores['c_nino34_wm'] == pytest.approx((weights * correlations).sum(), abs=1e-6)
    rmse = np.sqrt(((index_p - index_t) ** 2).mean(axis=0)).mean()
    assert scores['nino_rmse'] == pytest.approx(rmse, abs=1e-6)


ICAR_ENSO_WEIGHTS = np.array([1.5] * 4 + [2] * 7 + [3] * 7 + [4] * 6) * np.log(np.arange(24) + 1)
"""The weights of the 24 leads of the Tianchi ICAR-ENSO score, as Earthformer's ``compute_enso_score``
builds them with ``acc_weight='default'``; a forecast of fewer leads takes the first ones (``[:nino_out_len]``)."""


def test_lead_weights_are_earthformers_cut_to_the_first_leads():
    """Break caught: the weights of the last leads taken for a shorter forecast (``base[-leads:]`` in
    ``nino_lead_weights``), which keeps the length right; ENSO's 14 frames give 12 leads, not 24."""
    for leads in (1, 4, 12, 24):
        np.testing.assert_allclose(nino_lead_weights(leads).numpy(), ICAR_ENSO_WEIGHTS[:leads], rtol=1e-15, atol=0)
    assert nino_lead_weights(12)[0] == 0 and nino_lead_weights(12)[4] == pytest.approx(2 * math.log(5), rel=1e-15)


def test_weighted_nino_score_of_the_enso_task_weights_its_twelve_leads():
    """C-Nino3.4-WM of ENSO's T' = 14 (12 leads) against numpy's correlations and the reference weights.
    Break caught: the score weighting the leads with weights for another count (e.g. ``nino_lead_weights(24)``
    cut or a lead count of ``output_frames``)."""
    g = np.random.default_rng(4)
    true = g.normal(0, 1, (30, 14, 1, 24, 48))
    pred = true + g.normal(0, 0.8, true.shape)
    metric = ForecastMetrics(['nino'], output_frames=14)
    metric.update(torch.tensor(pred), torch.tensor(true))
    index_p, index_t = nino34_index(torch.tensor(pred)).numpy(), nino34_index(torch.tensor(true)).numpy()
    correlations = np.array([np.corrcoef(index_p[:, lead], index_t[:, lead])[0, 1] for lead in range(12)])
    assert metric.compute()['c_nino34_wm'] == pytest.approx((ICAR_ENSO_WEIGHTS[:12] * correlations).sum(), abs=1e-6)


def test_bad_metric_requests_are_named():
    with pytest.raises(ValueError, match=r"unknown metric\(s\) \['lpip'\]"):
        ForecastMetrics(['mse', 'lpip'])
    with pytest.raises(ValueError, match='needs output_frames > 3'):
        ForecastMetrics(['nino'])
    metric = ForecastMetrics(['mse'])
    with pytest.raises(ValueError, match=r'must both be \(B, T, C, H, W\)'):
        metric.update(torch.zeros(2, 3, 1, 8, 8), torch.zeros(2, 3, 1, 8, 9))


def test_contingency_equals_direct_counting_for_unsorted_thresholds():
    g = torch.Generator().manual_seed(5)
    pred = torch.randint(0, 256, (3, 40, 40), generator=g).float()
    true = torch.randint(0, 256, (3, 40, 40), generator=g).float()
    thresholds = (133, 16, 219, 74)
    expected = [[int(((pred >= t) & (true >= t)).sum()), int(((pred < t) & (true >= t)).sum()),
                 int(((pred >= t) & (true < t)).sum())] for t in thresholds]
    assert contingency(pred, true, thresholds).tolist() == expected


def test_field_metrics_are_physical_errors_and_unclipped_psnr_ssim_with_the_given_range():
    g = torch.Generator().manual_seed(7)
    true = torch.randn(2, 3, 2, 16, 16, generator=g, dtype=torch.float64)  # standardized, signed
    pred = true + 0.3 * torch.randn(true.shape, generator=g, dtype=torch.float64)
    mean = np.array([10.0, -3.0]).reshape(2, 1, 1)
    std = np.array([2.0, 50.0]).reshape(2, 1, 1)
    data_range = float(true.max() - true.min())
    metric = ForecastMetrics(['mse', 'mae', 'rmse', 'psnr', 'ssim'], Scaling.of(mean, std), data_range=data_range)
    metric.update(pred[:1], true[:1])
    metric.update(pred[1:], true[1:])
    scores = metric.compute()
    p = pred.numpy() * std + mean  # physical units, per channel
    t = true.numpy() * std + mean
    frames = p.shape[0] * p.shape[1]
    assert scores['mse'] == pytest.approx(((p - t) ** 2).sum() / frames, rel=1e-5)
    assert scores['mae'] == pytest.approx(np.abs(p - t).sum() / frames, rel=1e-5)
    assert scores['rmse'] == pytest.approx(math.sqrt(scores['mse']), rel=1e-12)
    model_p, model_t = pred.reshape(-1, 2, 16, 16).numpy(), true.reshape(-1, 2, 16, 16).numpy()
    psnr = np.mean([peak_signal_noise_ratio(model_t[i], model_p[i], data_range=data_range) for i in range(frames)])
    ssim = np.mean([structural_similarity(model_t[i], model_p[i], data_range=data_range, channel_axis=0)
                    for i in range(frames)])
    assert scores['psnr'] == pytest.approx(psnr, abs=1e-4) and scores['ssim'] == pytest.approx(ssim, abs=1e-4)
    assert metric.scaling == Scaling((10.0, -3.0), (2.0, 50.0))
    # the image convention (no data_range) would clip the signed field to [0, 1]: different scores
    image_metric = ForecastMetrics(['psnr'], Scaling.of(mean, std))
    image_metric.update(pred, true)
    assert image_metric.compute()['psnr'] != pytest.approx(scores['psnr'], abs=0.1)


def test_signed_fields_get_a_diverging_scale_shared_by_truth_and_prediction(tmp_path):
    from openstl_unistd.core.visualization import colour_scale, save_prediction_grid

    rng = np.random.default_rng(0)
    inputs, trues = rng.normal(0, 1, (4, 1, 8, 8)), rng.normal(0, 3, (6, 1, 8, 8))
    signed = colour_scale(inputs, trues, field=True)
    bound = max(np.abs(inputs).max(), np.abs(trues).max())
    assert signed == {'cmap': 'RdBu_r', 'vmin': -bound, 'vmax': bound}
    positive = colour_scale(inputs + 30, trues + 30, field=True)
    assert positive['cmap'] == 'viridis' and positive["vmin"] == pytest.approx(min((inputs + 30).min(), (trues + 30).min()))
    assert colour_scale(inputs, trues, field=False) == {'cmap': 'viridis', 'vmin': 0.0, 'vmax': 1.0}
    path = save_prediction_grid(inputs, trues, trues * 0.1, tmp_path / 'f.png', field=True)
    assert path.stat().st_size > 0
