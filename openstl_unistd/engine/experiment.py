"""Training and testing runs as ``tools/train.py`` and ``tools/test.py`` perform them.

A work dir holds the resolved ``config.py``, ``logs/`` (CSV and TensorBoard),
``checkpoints/{last,best}.ckpt``, ``results.json``, ``figures/`` and, on request, ``saved/``; it
belongs to one run at a time (``work_dir.py``).
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Mapping, Optional

from ..errors import UserValueError
from .config import build_datamodule, build_method, build_model, build_trainer, check_config, compile_training
from .scored_checkpoint import scored_checkpoint
from .work_dir import check_paths, check_work_dir, claim


def default_work_dir(config_path: str | Path) -> Path:
    return Path('work_dirs') / Path(config_path).stem


REFERENCE_ROWS = (('copy_last_frame', 'copy last frame'), ('train_mean', 'training mean'))
"""The reference predictors' sections of ``results.json`` and their rows in the printed table."""


def format_results(results: Mapping[str, Mapping[str, float]],
                   references: Optional[Mapping[str, Mapping[str, Mapping[str, float]]]] = None,
                   model_name: str = 'model') -> str:
    """One table: a row per task, then a row per reference predictor of ``references`` (section name →
    task → metrics, e.g. ``{'copy_last_frame': ...}``), its metrics as columns."""
    references = references or {}
    columns: list[str] = []
    for scores in list(results.values()) + [s for section in references.values() for s in section.values()]:
        columns += [name for name in scores if name not in columns]
    rows = []
    for task, scores in results.items():
        rows.append((task, model_name, scores))
        for section, label in REFERENCE_ROWS:
            if task in references.get(section, {}):
                rows.append((task, label, references[section][task]))

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


def _prepare(cfg, tasks, data_root: Optional[str], splits: tuple[str, ...]):
    """The data module, after checking that every dataset of ``splits`` is there; then seed."""
    import lightning as L

    datamodule = build_datamodule(cfg, tasks, data_root)
    datamodule.check_available(splits)
    L.seed_everything(int(cfg.get('seed', 0)), workers=True)
    return datamodule


def _rank_results(method) -> Optional[dict]:
    """The model's ranks: total, budget, mean per block and matrix (figure ranks.png) and every expert's."""
    from ..modules.ra_moe import RAMoELoRA, total_rank

    model = method.model
    named = [(name, m) for name, m in model.named_modules() if isinstance(m, RAMoELoRA)]
    if not named:
        return None
    result = {'total': float(total_rank(model).detach()),
              'budget': getattr(method, 'rank_budget', None),
              'frozen': all(m.frozen for _, m in named)}
    if hasattr(model, 'rank_table'):
        table = model.rank_table().tolist()
        result['mean_per_block'] = [dict(zip(model.RANK_COLUMNS, row)) for row in table]
    result['experts'] = {name: m.rank.detach().cpu().tolist() for name, m in named}
    return result


def _references(method) -> dict:
    """The reference predictors' results, by ``results.json`` section."""
    sections = {'copy_last_frame': method.copy_last_results, 'train_mean': method.train_mean_results}
    return {name: results for name, results in sections.items() if results}


def model_label(cfg: Mapping) -> str:
    """The model's name in result tables: ``UniSTD``, ``TAU``, ``SimVP v2``, ``Earthformer``…"""
    model = cfg['model']
    if model['type'] == 'SimVP':
        return {'incepu': 'SimVP v1', 'gsta': 'SimVP v2', 'tau': 'TAU'}.get(str(model.get('model_type', 'gsta')).lower(),
                                                                            'SimVP')
    return str(model['type'])


def _write_results(work_dir: Path, method, trainer) -> None:
    """``results.json``, naming the checkpoint it scored (``scored_checkpoint.py``); a test in which some task
    got no batch is an error, never an empty or partial file."""
    missing = [name for name in method.task_names if name not in method.test_results]
    if missing:
        raise UserValueError(f'no test results for task(s) {missing}: their test split gave no batch (empty split, or '
                             f'trainer.limit_test_batches=0); results.json was not written')
    payload = {'checkpoint': scored_checkpoint(trainer), 'results': method.test_results, **_references(method)}
    ranks = _rank_results(method)
    if ranks is not None:
        payload['ranks'] = ranks
    (work_dir / 'results.json').write_text(json.dumps(payload, indent=2, allow_nan=True))


def _save_rank_figure(model, work_dir: Path) -> None:
    if hasattr(model, 'rank_table'):
        from ..core.visualization import save_rank_heatmap

        from ..modules.ra_moe import ra_moe_modules

        ranks = [m.rank.detach().float() for m in ra_moe_modules(model)]
        center = float(sum(r.sum() for r in ranks) / sum(r.numel() for r in ranks)) if ranks else None
        save_rank_heatmap(model.rank_table().numpy(), model.RANK_COLUMNS, work_dir / 'figures' / 'ranks.png',
                          center=center)


def _check_test_data(datamodule) -> None:
    """Read every test sample once before training: NaN/±Inf or an unreadable sample in the test split stops
    the run now, naming it, instead of after the whole training."""
    from ..datasets.checks import check_all_samples

    check_all_samples(datamodule.build_split('test'), datamodule.num_workers)


def train(cfg, work_dir: Path, data_root: Optional[str] = None, resume: Optional[str] = None,
          test_after: bool = True, overwrite: bool = False, **trainer_overrides) -> dict:
    """Fit the config's model on its tasks, then test every task; returns the test results.

    Every check runs before global rank 0 claims the work dir (``work_dir.claim``: refuses another run's
    outputs unless ``resume`` or ``overwrite``, and locks it against a concurrent run): config, model options,
    pretrained weights file, ``init_from``, the data of every split (the test split read whole), the work dir
    itself. A run that fails one leaves nothing in the work dir. The other ranks only use it.
    With ``init_from``/``train_only`` (inference/extension.py) the model starts from a trained one and only the
    listed parameters train, on the tasks they belong to; testing covers every task.
    """
    from ..inference.model_card import card_callback
    from .trained_model_config import extension_from_config, training_card

    tasks = check_config(cfg)
    pretrained = _pretrained_file(cfg)
    extension = extension_from_config(cfg, tasks)
    fit_tasks = extension.fit_tasks if extension is not None else tasks
    check_paths(work_dir)
    fit_splits = ('train', 'val', 'test') if test_after else ('train', 'val')
    if len(fit_tasks) == len(tasks):
        datamodule = test_datamodule = _prepare(cfg, tasks, data_root, fit_splits)
    else:
        test_datamodule = build_datamodule(cfg, tasks, data_root)
        if test_after:
            test_datamodule.check_available(('test',))
        datamodule = _prepare(cfg, fit_tasks, data_root, ('train', 'val'))
    trainer = build_trainer(cfg, str(work_dir), resuming=resume is not None, **trainer_overrides)
    if trainer.is_global_zero:  # rank 0 only: the other ranks would find its lock and outputs there
        check_work_dir(work_dir, resume=resume is not None, overwrite=overwrite)
        if test_after:
            _check_test_data(test_datamodule)
    model = build_model(cfg, tasks)
    inherited = extension.apply(model, backbone_file=pretrained) if extension is not None else None
    card = training_card(cfg, tasks, [datamodule, test_datamodule], inherited)
    if extension is not None:
        extension.check_scalings(inherited, card.scalings)
    if compile_training(cfg, trainer) and hasattr(model, 'compile_regions'):
        model.compile_regions()
    method = build_method(cfg, model, tasks, save_dir=str(work_dir))
    lock = claim(work_dir, resume=resume is not None, overwrite=overwrite) if trainer.is_global_zero else None
    try:
        if trainer.is_global_zero:
            cfg.dump(str(work_dir / 'config.py'))
        trainer.callbacks.append(card_callback(card))
        trainer.fit(method, datamodule=datamodule, ckpt_path=resume)
        if trainer.is_global_zero:
            _save_rank_figure(model, work_dir)
        if not test_after:
            return {}
        checkpoints = Path(work_dir) / 'checkpoints'
        tested = checkpoints / 'best.ckpt'
        if not tested.is_file():
            tested = checkpoints / 'last.ckpt'
            if trainer.is_global_zero:
                print(f'no best.ckpt (validation never ran: disabled or empty); testing {tested}', file=sys.stderr)
        trainer.strategy.checkpoint_io.forget()
        trainer.test(method, datamodule=test_datamodule, ckpt_path=str(tested) if tested.is_file() else None,
                     verbose=False)
        if trainer.is_global_zero:
            _write_results(work_dir, method, trainer)
            print(format_results(method.test_results, _references(method), model_label(cfg)))
            note = random_backbone_note(cfg)
            if note:
                print(note)
        return method.test_results
    finally:
        if lock is not None:
            lock.release()


def random_backbone_note(cfg: Mapping) -> Optional[str]:
    """One line saying that the config's backbone is randomly initialized (the demo's, a test's) and how to
    start from CLIP weights instead; ``None`` for pretrained backbones and models without one."""
    model = cfg['model']
    if 'backbone' not in model or model.get('pretrained', False) is not False:
        return None
    state = 'trained with the adapters' if model.get('train_backbone') else 'frozen'
    return (f"note: the backbone ({model['backbone']}) is randomly initialized, not pretrained, and {state}; the "
            "paper starts from CLIP. With a CLIP file: configs/unistd/demo_clip.py, or --cfg-options "
            "model.backbone=clip model.pretrained=<ViT-B-16 file> (docs/method.md, 'Backbone and pretrained weights')")


def _pretrained_file(cfg):
    """The backbone weights file of the config's model (``None``: random or no backbone)."""
    from ..modules.backbone import pretrained_weights_file

    options = dict(cfg['model'])
    return pretrained_weights_file(options['backbone'], options.get('pretrained', False)) if 'backbone' in options else None


def test(cfg, checkpoint: str, work_dir: Path, data_root: Optional[str] = None, **trainer_overrides) -> dict:
    """Test a checkpoint on every task of the config; returns the results. The work dir's earlier ``results.json``
    becomes ``results.previous.json`` when the test starts (``work_dir.claim``), so a failed test leaves none."""
    if not Path(checkpoint).is_file():
        raise FileNotFoundError(f'checkpoint {checkpoint!r} not found')
    tasks = check_config(cfg)
    check_paths(work_dir)
    datamodule = _prepare(cfg, tasks, data_root, ('test',))
    trainer = build_trainer(cfg, str(work_dir), **trainer_overrides)
    if trainer.is_global_zero:
        check_work_dir(work_dir, training=False)
    model = build_model(cfg, tasks, load_pretrained=False)
    method = build_method(cfg, model, tasks, save_dir=str(work_dir))
    lock = claim(work_dir, training=False) if trainer.is_global_zero else None
    try:
        trainer.test(method, datamodule=datamodule, ckpt_path=checkpoint, verbose=False)
        if trainer.is_global_zero:
            _write_results(work_dir, method, trainer)
            print(format_results(method.test_results, _references(method), model_label(cfg)))
        return method.test_results
    finally:
        if lock is not None:
            lock.release()
