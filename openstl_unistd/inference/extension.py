"""Adding a task to a trained model: start from its weights, train only the new task's ends.

Two config keys (read by the engine, ``engine/trained_model_config.py``, and handed down as an :class:`Extension`)::

    init_from = 'work_dirs/demo_pair/checkpoints/last.ckpt'     # a checkpoint or a .safetensors export
    train_only = ['encoders.demo_traffic', 'decoders.demo_traffic']

``init_from`` loads every tensor the file has into the model of the config, whose task list holds the
trained model's tasks (same specs) and the new ones; ``train_only`` lists the parameters to train, by
name or name prefix, and freezes every other one. When it lists only task ends, training batches come
from those tasks alone and every other task's outputs stay bit-identical: nothing they compute with
changes. Shared parts (adapters, routers, ranks, temporal modules) may be listed too, but then every
task changes. A model whose ranks are still being searched cannot be extended with frozen ranks:
rounding them at the end of the search would change the old tasks.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping, Optional

from torch import nn

from ..core.state_diff import StateDiff
from ..errors import UserValueError
from ..modules.adapter import backbone_keys
from ..tasks import TaskSpec
from .model_card import ModelCard
from .model_files import ModelFile, read_model_file

TASK_END_PARTS = ('encoders', 'decoders')


def _matches(name: str, entry: str) -> bool:
    return name == entry or name.startswith(entry + '.')


@dataclass(frozen=True)
class Extension:
    """``init_from`` (a checkpoint or export, or ``None``) and ``train_only`` (names or prefixes; empty:
    everything trains) of a run, checked against its tasks."""

    init_from: Optional[Path]
    train_only: tuple[str, ...]
    tasks: tuple[TaskSpec, ...]

    @property
    def fit_tasks(self) -> list[TaskSpec]:
        """The tasks whose training batches can change a trainable parameter: the tasks whose ends are
        listed, or every task as soon as a shared part is."""
        names = {t.name for t in self.tasks}
        chosen = set()
        for entry in self.train_only:
            parts = entry.split('.')
            if parts[0] in TASK_END_PARTS and len(parts) > 1 and parts[1] in names:
                chosen.add(parts[1])
            else:
                return list(self.tasks)
        return [t for t in self.tasks if t.name in chosen] if chosen else list(self.tasks)

    def source(self) -> Optional[ModelFile]:
        return read_model_file(self.init_from) if self.init_from is not None else None

    def apply(self, model: nn.Module, source: Optional[ModelFile] = None,
              backbone_file: Optional[Path] = None) -> Optional[ModelCard]:
        """Load ``init_from`` into ``model`` and freeze what ``train_only`` does not list; returns the
        source's card. ``backbone_file``: the weights file ``model``'s backbone was built from (an export's
        hash is checked against it)."""
        self._check_entries(model)
        source = source if source is not None else self.source()
        if source is not None:
            self._load(model, source, backbone_file)
        if self.train_only:
            self._freeze(model, source)
        return source.card if source is not None else None

    def _check_entries(self, model: nn.Module) -> None:
        names = [name for name, _ in model.named_parameters()]
        unused = [e for e in self.train_only if not any(_matches(name, e) for name in names)]
        if unused:
            examples = sorted({'.'.join(n.split('.')[:2]) for n in names if n.startswith(TASK_END_PARTS)})
            raise UserValueError(f'train_only: {unused} name no parameter of the model; e.g. {examples[:6]}, or any '
                                 'parameter name or prefix (backbone.blocks.0.attn.qkv.adapter, ...)')

    def _load(self, model: nn.Module, source: ModelFile, backbone_file: Optional[Path]) -> None:
        from .export import backbone_file_for

        where = f'init_from {source.path}'
        if source.card is not None:
            own = {t.name: t for t in self.tasks}
            dropped = [t.name for t in source.card.tasks if t.name not in own]
            if dropped:
                raise UserValueError(f'{where}: the trained model serves {dropped}, which the config\'s tasks lack; '
                                     f'keep every trained task ({source.card.task_names}) and add the new ones')
            for spec in source.card.tasks:
                if own[spec.name] != spec:
                    raise UserValueError(f"{where}: task '{spec.name}' was trained as {spec}, the config has "
                                         f'{own[spec.name]}')
        state = model.state_dict()
        expected = set(state)
        if source.kind == 'export':
            card = source.require_card()
            if card.random_backbone and not card.backbone_stored:
                self._check_random_backbone(model, card, where)
                expected -= backbone_keys(model)
            elif card.backbone is not None and not card.backbone_stored:
                if backbone_file is None:
                    raise UserValueError(f"{where}: the export needs the model's pretrained backbone file; set "
                                         'model.pretrained to the file it was trained with')
                backbone_file_for(card, source.path, backbone_file)
                expected -= backbone_keys(model)
        diff = StateDiff.of(state, source.state)
        replace(diff, missing=()).check(where, 'the model of the config')   # new tasks' tensors may be missing
        parameters = {name for name, _ in model.named_parameters()}
        new = sorted(k for k in diff.missing if k in expected and k in parameters)
        untrained = [k for k in new if self.train_only and not any(_matches(k, e) for e in self.train_only)]
        if untrained:
            raise UserValueError(f'{where}: {len(untrained)} parameters are neither in the file nor in train_only, so they '
                                 f'would keep their random initialization, e.g. {untrained[:3]}')
        model.load_state_dict(source.state, strict=False)

    @staticmethod
    def _check_random_backbone(model: nn.Module, card: ModelCard, where: str) -> None:
        """The config's model must have the random backbone the export was trained with (the export does not
        hold it): the same weights hash, i.e. the same architecture and ``backbone_seed``."""
        from .export import check_random_backbone
        from .integrity import IntegrityError

        try:
            check_random_backbone(card, model, where)
        except IntegrityError:
            seed = card.backbone.get('seed')
            raise UserValueError(f"{where}: the config's random backbone (model.backbone={card.model.get('backbone')!r} "
                                 f'and backbone_kwargs, model.backbone_seed) is not the one the export was trained with '
                             f"(its weights' sha256 {card.backbone['weights_sha256']}): use the export's "
                             f"backbone_kwargs {card.model.get('backbone_kwargs')} and set model.backbone_seed={seed}"
                             ) from None

    def _freeze(self, model: nn.Module, source: Optional[ModelFile]) -> None:
        from ..modules.ra_moe import ra_moe_modules

        parameters = dict(model.named_parameters())
        for name, parameter in parameters.items():
            parameter.requires_grad_(any(_matches(name, e) for e in self.train_only))
        names = {id(p): n for n, p in parameters.items()}
        searching = [names[id(m.rank)] for m in ra_moe_modules(model) if not m.frozen and not m.rank.requires_grad]
        if searching:
            origin = f'init_from {source.path}' if source is not None else 'the model'
            raise UserValueError(f'{origin}: {len(searching)} RA-MoE ranks are still being searched (e.g. {searching[:2]}) '
                                 'but train_only does not list them: the search would round them and change every task. '
                                 'Start from a checkpoint saved after rank_search.epochs (e.g. last.ckpt), or list them.')

    def check_scalings(self, source_card: Optional[ModelCard], scalings: Mapping) -> None:
        """The trained tasks' scalings of the data now must be the ones the model was trained with."""
        if source_card is None:
            return
        for name, scaling in source_card.scalings.items():
            if name in scalings and scalings[name] != scaling:
                raise UserValueError(f"init_from {self.init_from}: task '{name}' was trained with scaling "
                                     f'{scaling.as_dict()}, its data now gives {scalings[name].as_dict()}')
