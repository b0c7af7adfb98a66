"""Training and testing runs as ``tools/train.py`` and ``tools/test.py`` perform them.

A work dir holds the resolved ``config.py``, ``logs/`` (CSV and TensorBoard),
``checkpoints/{last,best}.ckpt``, ``results.json``, ``figures/`` and, on request, ``saved/``.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Mapping, Optional

from .config import build_datamodule, build_method, build_model, build_trainer, check_config


def default_work_dir(config_path: str | Path) -> Path:
    return Path('work_dirs') / Path(config_path).stem


def format_results(results: Mapping[str, Mapping[str, float]],
                   baseline: Optional[Mapping[str, Mapping[str, float]]] = None, model_name: str = 'model') -> str:
    """One table: a row per task (and per baseline row when given), its metrics as columns."""
    columns: list[str] = []
    for scores in list(results.values()) + list((baseline or {}).values()):
        columns += [name for name in scores if name not in columns]
    rows = []
    for task, scores in results.items():
        rows.append((task, model_name, scores))
        if baseline and task in baseline:
            rows.append((task, 'copy last frame', baseline[task]))

    def cell(value) -> str:
        if value is None:
            return '-'
        return 'nan' if math.isnan(value) else f'{value:.4g}'

    header = ['task', 'model', *columns]
    body = [[task, name, *[cell(scores.get(c)) for c in columns]] for task, name, scores in rows]
    widths = [max(len(str(r[i])) for r in [header] + body) for i in range(len(header))]
    lines = ['  '.join(str(v).ljust(w) if i < 2 else str(v).rjust(w) for i, (v, w) in enumerate(zip(r, widths)))
             for r in [header] + body]
    lines.insert(1, '  '.join('-' * w for w in widths))
    return '\n'.join(lines)


def _prepare(cfg, data_root: Optional[str], splits: tuple[str, ...], tasks=None):
    """Tasks and data module (of ``tasks``, default all), after checking that every dataset of ``splits``
    is there; then seed."""
    import lightning as L

    tasks = tasks or check_config(cfg)
    datamodule = build_datamodule(cfg, tasks, data_root)
    datamodule.check_available(splits)
    L.seed_everything(int(cfg.get('seed', 0)), workers=True)
    return tasks, datamodule


def _write_results(work_dir: Path, method) -> None:
    payload = {'results': method.test_results}
    if method.baseline_results:
        payload['copy_last_frame'] = method.baseline_results
    (work_dir / 'results.json').write_text(json.dumps(payload, indent=2, allow_nan=True))


def _save_rank_figure(model, work_dir: Path) -> None:
    if hasattr(model, 'rank_table'):
        from ..core.visualization import save_rank_heatmap

        save_rank_heatmap(model.rank_table().numpy(), model.RANK_COLUMNS, work_dir / 'figures' / 'ranks.png')


def train(cfg, work_dir: Path, data_root: Optional[str] = None, resume: Optional[str] = None,
          test_after: bool = True, **trainer_overrides) -> dict:
    """Fit the config's model on its tasks, then test every task; returns the test results.

    With ``init_from``/``train_only`` (utils/extension.py) the model starts from a trained one and only the
    listed parameters train, on the tasks they belong to; testing covers every task.
    """
    from .extension import Extension
    from .model_card import card_callback, training_card

    tasks = check_config(cfg)
    extension = Extension.from_config(cfg, tasks)
    fit_tasks = extension.fit_tasks if extension is not None else tasks
    if len(fit_tasks) == len(tasks):
        tasks, datamodule = _prepare(cfg, data_root, ('train', 'val', 'test') if test_after else ('train', 'val'), tasks)
        test_datamodule = datamodule
    else:
        test_datamodule = build_datamodule(cfg, tasks, data_root)
        if test_after:
            test_datamodule.check_available(('test',))
        _, datamodule = _prepare(cfg, data_root, ('train', 'val'), fit_tasks)
    work_dir.mkdir(parents=True, exist_ok=True)
    cfg.dump(str(work_dir / 'config.py'))
    model = build_model(cfg, tasks)
    inherited = extension.apply(model, backbone_file=_pretrained_file(cfg)) if extension is not None else None
    card = training_card(cfg, tasks, [datamodule, test_datamodule], inherited)
    if extension is not None:
        extension.check_scalings(inherited, card.scalings)
    method = build_method(cfg, model, tasks, save_dir=str(work_dir))
    trainer = build_trainer(cfg, str(work_dir), **trainer_overrides)
    trainer.callbacks.append(card_callback(card))
    trainer.fit(method, datamodule=datamodule, ckpt_path=resume)
    if trainer.is_global_zero:
        _save_rank_figure(model, work_dir)
    if not test_after:
        return {}
    best = Path(work_dir) / 'checkpoints' / 'best.ckpt'
    trainer.test(method, datamodule=test_datamodule, ckpt_path=str(best) if best.exists() else None, verbose=False)
    if trainer.is_global_zero:
        _write_results(work_dir, method)
        print(format_results(method.test_results, method.baseline_results, cfg['model']['type']))
    return method.test_results


def _pretrained_file(cfg):
    """The backbone weights file of the config's model (``None``: random or no backbone)."""
    from ..modules.backbone import pretrained_weights_file

    options = dict(cfg['model'])
    return pretrained_weights_file(options['backbone'], options.get('pretrained', False)) if 'backbone' in options else None


def test(cfg, checkpoint: str, work_dir: Path, data_root: Optional[str] = None, **trainer_overrides) -> dict:
    """Test a checkpoint on every task of the config; returns the results."""
    if not Path(checkpoint).is_file():
        raise FileNotFoundError(f'checkpoint {checkpoint!r} not found')
    tasks, datamodule = _prepare(cfg, data_root, ('test',))
    work_dir.mkdir(parents=True, exist_ok=True)
    model = build_model(cfg, tasks, load_pretrained=False)
    method = build_method(cfg, model, tasks, save_dir=str(work_dir))
    trainer = build_trainer(cfg, str(work_dir), **trainer_overrides)
    trainer.test(method, datamodule=datamodule, ckpt_path=checkpoint, verbose=False)
    if trainer.is_global_zero:
        _write_results(work_dir, method)
        print(format_results(method.test_results, method.baseline_results, cfg['model']['type']))
    return method.test_results
