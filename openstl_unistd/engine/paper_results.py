"""The paper's published numbers (UniSTD, CVPR 2025: Tables 2, 3, 4, 5, 6 and 10), transcribed as data.

Each entry of :data:`ROWS` is one printed row: its table, its name as printed, the model it is (in our
labels, ``engine/experiment.model_label``), the tasks it was trained on (``None``: the paper does not
say), the variant it is (``UNISTD``: the paper's UniSTD; ablation switches for Tables 4 and 5) and its
values, task → metric → number as printed. :data:`TABLES` says which rows and columns each table of
``tools/report.py --table`` shows. Metric names are ours: PSNR ``psnr``, SSIM ``ssim``, SEVIR's CSI
``csi_m`` (the mean over thresholds, Earthformer's convention), ENSO's "NINO" ``c_nino34_m`` (the mean
Nino3.4 correlation over leads: 0.72 is in the range of Earthformer's C-Nino3.4-M, not of its weighted
sum), RMSE ``rmse``.

Reading the extracted text of Table 2: a row prints one ``-`` for a task it has no values for (one
dash for both PSNR and SSIM), so every row has ten entries (eight tasks' pairs, CSI, NINO); the tasks
with values are the ones it was trained on, which gives its task set.

Inconsistencies of the paper, kept as printed:
- The text around Table 2 quotes numbers that are in no row of it: "SimVP, PSNR 29.7 and SSIM 0.75"
  on TaxiBJ, "TAU3 Tasks, PSNR 23.7 and SSIM 0.89" on Human3.6M, "TAU3 Tasks, PSNR 19.6 and SSIM 0.59"
  on Cityscapes, "Earthformer, PSNR 16.3 and SSIM 0.61" on BAIR. The table's numbers are used.
- Table 3 prints TaxiBJ's MCVD as "36.4 (-2.9)" against Ours' 39.6 (36.4 is 3.2 below); every other printed
  difference of Tables 3 and 4 agrees with its values. 36.4 is kept.
- Table 10's "TAU 3 task" row has four values (TaxiBJ, Human3.6M, Cityscapes, KITTI); its KITTI 76.59 is
  also TAU's KITTI GFLOPs in Table 9. The row is taken as Table 2's TAU on TaxiBJ, Human3.6M and
  Cityscapes, and its KITTI value is kept.
- Table 10's "SimVP 3 task" (TaxiBJ, BAIR, Human3.6M) is taken as SimVP v2: the only SimVP of Table 2
  trained on those three tasks.
- Table 5's CLIP row equals Table 4's full model on BAIR, KTH and Cityscapes; the paper does not say
  which tasks Table 5's models were trained on, so its rows match runs on any task set.
"""
from __future__ import annotations

PAPER = 'UniSTD: Towards Unified Spatiotemporal Learning (CVPR 2025)'

PAPER_CONVENTIONS = {'ssim': {'data_range': 2.0}}
"""The metric conventions of the published tables where ours may differ: OpenSTL called scikit-image's SSIM
without ``data_range``, which for floats meant 2 before scikit-image 0.20 (docs/metrics.md)."""

PAPER10 = ('taxibj', 'traffic4cast', 'mmnist', 'bair', 'human', 'kth', 'cityscapes', 'kitti', 'sevir', 'enso')
MULTI4 = ('bair', 'kth', 'cityscapes', 'taxibj')

UNISTD = {'backbone': 'ViT-B/16', 'init': 'clip', 'ra_moe': True, 'temporal': True}
"""The paper's UniSTD: ViT-B/16 from CLIP, RA-MoE LoRA with rank search, temporal module."""

_IMAGE_TASKS = ('taxibj', 'traffic4cast', 'mmnist', 'bair', 'human', 'kth', 'cityscapes', 'kitti')

TABLES = {
    '2': {'title': 'Table 2: multi-task models (PSNR, SSIM; SEVIR CSI, ENSO Nino3.4 correlation)',
          'sources': ('2',),
          'columns': (*[(task, metric) for task in _IMAGE_TASKS for metric in ('psnr', 'ssim')],
                      ('sevir', 'csi_m'), ('enso', 'c_nino34_m'))},
    '3': {'title': 'Tables 3 and 6: the unified model against single-task baselines (PSNR, SSIM)',
          'sources': ('3', '6'),
          'columns': tuple((task, metric) for task in ('taxibj', 'cityscapes', 'bair', 'kth', 'mmnist')
                           for metric in ('psnr', 'ssim'))},
    '4': {'title': 'Table 4: RA-MoE and temporal module ablation, four tasks (PSNR)',
          'sources': ('4',),
          'columns': tuple((task, 'psnr') for task in MULTI4)},
    '5': {'title': 'Table 5: backbone initialization (PSNR, SSIM)',
          'sources': ('5',),
          'columns': tuple((task, metric) for task in ('bair', 'kth', 'cityscapes') for metric in ('psnr', 'ssim'))},
    '10': {'title': 'Table 10: RMSE',
           'sources': ('10',),
           'columns': tuple((task, 'rmse') for task in _IMAGE_TASKS)},
}
"""Each table of ``tools/report.py --table``: its title, the paper tables its rows come from, its columns."""


def _pair(psnr: float, ssim: float) -> dict:
    return {'psnr': psnr, 'ssim': ssim}


ROWS = (
    # Table 2: one model per row, trained jointly on the tasks it has values for.
    dict(table='2', row='SimVPv1 3 Tasks', model='SimVP v1', tasks=('traffic4cast', 'kth', 'kitti'), variant={},
         values={'traffic4cast': _pair(23.5, 0.05), 'kth': _pair(9.8, 0.32), 'kitti': _pair(14.3, 0.27)}),
    dict(table='2', row='SimVPv2 3 Tasks', model='SimVP v2', tasks=('taxibj', 'bair', 'human'), variant={},
         values={'taxibj': _pair(24.6, 0.56), 'bair': _pair(15.7, 0.53), 'human': _pair(22.4, 0.88)}),
    dict(table='2', row='SimVPv2 3 Tasks', model='SimVP v2', tasks=('traffic4cast', 'kth', 'kitti'), variant={},
         values={'traffic4cast': _pair(23.7, 0.08), 'kth': _pair(17.0, 0.56), 'kitti': _pair(12.4, 0.18)}),
    dict(table='2', row='SimVPv2 5 Tasks', model='SimVP v2', tasks=('taxibj', 'bair', 'human', 'cityscapes', 'sevir'),
         variant={}, values={'taxibj': _pair(20.4, 0.43), 'bair': _pair(12.1, 0.34), 'human': _pair(17.6, 0.73),
                             'cityscapes': _pair(14.7, 0.46), 'sevir': {'csi_m': 0.32}}),
    dict(table='2', row='TAU 3 Tasks', model='TAU', tasks=('taxibj', 'bair', 'human'), variant={},
         values={'taxibj': _pair(28.2, 0.72), 'bair': _pair(16.5, 0.57), 'human': _pair(21.3, 0.84)}),
    dict(table='2', row='TAU 3 Tasks', model='TAU', tasks=('taxibj', 'human', 'cityscapes'), variant={},
         values={'taxibj': _pair(30.5, 0.78), 'human': _pair(22.4, 0.86), 'cityscapes': _pair(18.9, 0.59)}),
    dict(table='2', row='TAU 3 Tasks', model='TAU', tasks=('bair', 'human', 'cityscapes'), variant={},
         values={'bair': _pair(16.7, 0.59), 'human': _pair(21.2, 0.84), 'cityscapes': _pair(18.6, 0.57)}),
    dict(table='2', row='TAU 3 Tasks', model='TAU', tasks=('traffic4cast', 'kth', 'kitti'), variant={},
         values={'traffic4cast': _pair(23.8, 0.08), 'kth': _pair(17.4, 0.31), 'kitti': _pair(13.5, 0.17)}),
    dict(table='2', row='Eformer 3 Tasks', model='Earthformer', tasks=('taxibj', 'human', 'cityscapes'), variant={},
         values={'taxibj': _pair(23.2, 0.58), 'human': _pair(15.2, 0.6), 'cityscapes': _pair(19.3, 0.63)}),
    dict(table='2', row='Eformer 3 Tasks', model='Earthformer', tasks=('taxibj', 'bair', 'cityscapes'), variant={},
         values={'taxibj': _pair(23.3, 0.60), 'bair': _pair(12.9, 0.38), 'cityscapes': _pair(17.2, 0.57)}),
    dict(table='2', row='Eformer 3 Tasks', model='Earthformer', tasks=('traffic4cast', 'kth', 'kitti'), variant={},
         values={'traffic4cast': _pair(24.0, 0.83), 'kth': _pair(16.8, 0.74), 'kitti': _pair(10.9, 0.32)}),
    dict(table='2', row='Eformer 5 Tasks', model='Earthformer', tasks=('taxibj', 'bair', 'human', 'cityscapes', 'sevir'),
         variant={}, values={'taxibj': _pair(20.8, 0.41), 'bair': _pair(12.0, 0.32), 'human': _pair(15.0, 0.69),
                             'cityscapes': _pair(14.1, 0.41), 'sevir': {'csi_m': 0.30}}),
    dict(table='2', row='Ours 10 Tasks', model='UniSTD', tasks=PAPER10, variant=UNISTD,
         values={'taxibj': _pair(39.6, 0.98), 'traffic4cast': _pair(30.6, 0.92), 'mmnist': _pair(20.5, 0.90),
                 'bair': _pair(20.3, 0.86), 'human': _pair(33.2, 0.98), 'kth': _pair(28.4, 0.92),
                 'cityscapes': _pair(27.4, 0.89), 'kitti': _pair(17.2, 0.61), 'sevir': {'csi_m': 0.41},
                 'enso': {'c_nino34_m': 0.72}}),

    # Table 3 (TaxiBJ, Cityscapes) and its appendix continuation Table 6 (BAIR, KTH, MMNIST): the ten-task
    # UniSTD ("Ours") against baselines trained on that task alone; each task is a block of rows, named by
    # model as printed. "SimVP" of Table 3 is Table 6's SimVPv1.
    dict(table='3', row='Ours', model='UniSTD', tasks=PAPER10, variant=UNISTD,
         values={'taxibj': _pair(39.6, 0.9825)}),
    dict(table='3', row='TAU', model='TAU', tasks=('taxibj',), variant={},
         values={'taxibj': _pair(39.3, 0.9813)}),
    dict(table='3', row='SimVP', model='SimVP v1', tasks=('taxibj',), variant={},
         values={'taxibj': _pair(39.2, 0.9820)}),
    dict(table='3', row='SimVPv2', model='SimVP v2', tasks=('taxibj',), variant={},
         values={'taxibj': _pair(39.2, 0.9812)}),
    dict(table='3', row='Earthformer', model='Earthformer', tasks=('taxibj',), variant={},
         values={'taxibj': _pair(38.9, 0.9790)}),
    dict(table='3', row='MCVD', model='MCVD', tasks=('taxibj',), variant={},
         values={'taxibj': _pair(36.4, 0.9676)}),
    dict(table='3', row='Ours', model='UniSTD', tasks=PAPER10, variant=UNISTD,
         values={'cityscapes': _pair(27.4, 0.8874)}),
    dict(table='3', row='TAU', model='TAU', tasks=('cityscapes',), variant={},
         values={'cityscapes': _pair(26.4, 0.8660)}),
    dict(table='3', row='SimVP', model='SimVP v1', tasks=('cityscapes',), variant={},
         values={'cityscapes': _pair(26.5, 0.8717)}),
    dict(table='3', row='SimVPv2', model='SimVP v2', tasks=('cityscapes',), variant={},
         values={'cityscapes': _pair(26.7, 0.8738)}),
    dict(table='3', row='MCVD', model='MCVD', tasks=('cityscapes',), variant={},
         values={'cityscapes': _pair(19.1, 0.8165)}),
    dict(table='6', row='Ours', model='UniSTD', tasks=PAPER10, variant=UNISTD, values={'bair': _pair(20.3, 0.86)}),
    dict(table='6', row='TAU', model='TAU', tasks=('bair',), variant={}, values={'bair': _pair(19.8, 0.86)}),
    dict(table='6', row='SimVPV1', model='SimVP v1', tasks=('bair',), variant={},
         values={'bair': _pair(20.3, 0.86)}),
    dict(table='6', row='SimVPv2', model='SimVP v2', tasks=('bair',), variant={},
         values={'bair': _pair(19.9, 0.85)}),
    dict(table='6', row='Ours', model='UniSTD', tasks=PAPER10, variant=UNISTD, values={'kth': _pair(28.4, 0.92)}),
    dict(table='6', row='TAU', model='TAU', tasks=('kth',), variant={}, values={'kth': _pair(27.9, 0.90)}),
    dict(table='6', row='SimVPv1', model='SimVP v1', tasks=('kth',), variant={}, values={'kth': _pair(27.7, 0.90)}),
    dict(table='6', row='SimVPv2', model='SimVP v2', tasks=('kth',), variant={}, values={'kth': _pair(27.9, 0.90)}),
    dict(table='6', row='Ours', model='UniSTD', tasks=PAPER10, variant=UNISTD,
         values={'mmnist': _pair(20.5, 0.90)}),
    dict(table='6', row='TAU', model='TAU', tasks=('mmnist',), variant={}, values={'mmnist': _pair(18.9, 0.85)}),
    dict(table='6', row='SimVPv1', model='SimVP v1', tasks=('mmnist',), variant={},
         values={'mmnist': _pair(19.5, 0.88)}),
    dict(table='6', row='SimVPv2', model='SimVP v2', tasks=('mmnist',), variant={},
         values={'mmnist': _pair(19.0, 0.85)}),

    # Table 4: UniSTD on BAIR, KTH, Cityscapes and TaxiBJ; "AdaMoE ✗" is one plain LoRA (configs/unistd/ablations).
    dict(table='4', row='AdaMoE ✓ TAtn. ✓', model='UniSTD', tasks=MULTI4, variant=UNISTD,
         values={'bair': {'psnr': 20.2}, 'kth': {'psnr': 28.2}, 'cityscapes': {'psnr': 27.4}, 'taxibj': {'psnr': 39.5}}),
    dict(table='4', row='AdaMoE ✓ TAtn. ✗', model='UniSTD', tasks=MULTI4, variant={**UNISTD, 'temporal': False},
         values={'bair': {'psnr': 20.1}, 'kth': {'psnr': 27.7}, 'cityscapes': {'psnr': 26.7}, 'taxibj': {'psnr': 39.4}}),
    dict(table='4', row='AdaMoE ✗ TAtn. ✗', model='UniSTD', tasks=MULTI4,
         variant={**UNISTD, 'ra_moe': False, 'temporal': False},
         values={'bair': {'psnr': 20.1}, 'kth': {'psnr': 27.3}, 'cityscapes': {'psnr': 26.2}, 'taxibj': {'psnr': 39.2}}),

    # Table 5 (its header prints "PSRN" for PSNR).
    dict(table='5', row='Random', model='UniSTD', tasks=None, variant={**UNISTD, 'init': 'random'},
         values={'bair': _pair(20.1, 0.85), 'kth': _pair(27.1, 0.90), 'cityscapes': _pair(26.7, 0.87)}),
    dict(table='5', row='LAION', model='UniSTD', tasks=None, variant={**UNISTD, 'init': 'laion'},
         values={'bair': _pair(20.2, 0.86), 'kth': _pair(28.1, 0.92), 'cityscapes': _pair(27.1, 0.88)}),
    dict(table='5', row='CLIP', model='UniSTD', tasks=None, variant=UNISTD,
         values={'bair': _pair(20.2, 0.86), 'kth': _pair(28.2, 0.92), 'cityscapes': _pair(27.4, 0.89)}),

    # Table 10: RMSE.
    dict(table='10', row='UniSTD (Ours)', model='UniSTD', tasks=PAPER10, variant=UNISTD,
         values={'taxibj': {'rmse': 0.54}, 'traffic4cast': {'rmse': 8.78}, 'mmnist': {'rmse': 6.27},
                 'bair': {'rmse': 11.54}, 'human': {'rmse': 10.46}, 'kth': {'rmse': 5.42},
                 'cityscapes': {'rmse': 10.82}, 'kitti': {'rmse': 39.49}}),
    dict(table='10', row='SimVP 3 task', model='SimVP v2', tasks=('taxibj', 'bair', 'human'), variant={},
         values={'taxibj': {'rmse': 2.86}, 'bair': {'rmse': 18.79}, 'human': {'rmse': 35.45}}),
    dict(table='10', row='TAU 3 task', model='TAU', tasks=('taxibj', 'human', 'cityscapes'), variant={},
         values={'taxibj': {'rmse': 1.69}, 'human': {'rmse': 34.48}, 'cityscapes': {'rmse': 26.56},
                 'kitti': {'rmse': 76.59}}),
    dict(table='10', row='UniST [78]', model='UniST', tasks=None, variant={},
         values={'taxibj': {'rmse': 0.90}, 'bair': {'rmse': 25.76}, 'kth': {'rmse': 23.36}, 'kitti': {'rmse': 56.95}}),
)
"""Every published number: ``table``, ``row`` (as printed), ``model``, ``tasks``, ``variant``, ``values``."""


def paper_value(table: str, row: str, task: str, metric: str, tasks=None) -> float:
    """One published number, e.g. ``paper_value('2', 'Ours 10 Tasks', 'taxibj', 'psnr')`` → 39.6; ``tasks``
    picks among rows printed with the same name (Table 2's four "TAU 3 Tasks")."""
    found = [r['values'][task][metric] for r in ROWS
             if r['table'] == table and r['row'] == row and task in r['values'] and metric in r['values'][task]
             and (tasks is None or set(r['tasks'] or ()) == set(tasks))]
    if len(found) != 1:
        raise KeyError(f'paper Table {table}, row {row!r}, {task} {metric}: {len(found)} values')
    return found[0]
