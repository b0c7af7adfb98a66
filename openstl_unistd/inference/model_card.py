"""What a trained model carries besides its tensors, so that it can be used without its config.

A model card holds the model's type and constructor options, its task specs, each task's scaling
(``physical = model · std + mean``), the training method's options and the backbone's identity
(scheme, timm name, pretrained file and its SHA-256). It is plain data (JSON-able): training writes
it into every Lightning checkpoint under :data:`CARD_KEY` (readable with ``weights_only=True``) and
``tools/export.py`` into the metadata of a ``.safetensors`` export. The card of a run is made from its config
in the engine (``engine/trained_model_config.py``); this layer reads no config.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from torch import nn

from ..core.scaling import Scaling
from ..errors import UserValueError
from ..tasks import TaskSpec, resolve_task

CARD_KEY = 'openstl_unistd'
"""Top-level key of the card in a Lightning checkpoint and in a ``.safetensors`` export's metadata."""

CARD_FORMAT = 1


def plain_data(value: Any) -> Any:
    """``value`` as JSON data (mmengine ConfigDicts and tuples become dicts and lists)."""
    return json.loads(json.dumps(value.to_dict() if hasattr(value, 'to_dict') else value))


@dataclass(frozen=True)
class ModelCard:
    """Everything but the tensors that :func:`~.predictor.predictor_of` needs.

    Attributes:
        model: ``{'type': 'UniSTD', **constructor options}`` (without ``tasks``).
        tasks: the task specs, in the model's order.
        scalings: task name → :class:`~openstl_unistd.core.scaling.Scaling` of its data.
        method: ``{'type': 'unistd', **options}`` of the training method.
        backbone: ``{'scheme', 'timm_name', 'file', 'sha256'}`` of a pretrained backbone; for a randomly
            initialized one ``file`` and ``sha256`` are ``None`` and ``seed`` is the seed its weights were
            drawn from (an export adds ``weights_sha256``, the hash of the weights that seed derives, and
            ``derived_with``, the torch and timm versions that derived them); ``None`` for models without one.
    """

    model: dict
    tasks: tuple[TaskSpec, ...]
    scalings: dict[str, Scaling]
    method: dict = field(default_factory=lambda: {'type': 'unistd'})
    backbone: Optional[dict] = None

    def __post_init__(self) -> None:
        names = [t.name for t in self.tasks]
        missing = [name for name in names if name not in self.scalings]
        if missing:
            raise UserValueError(f'model card: no scaling for task(s) {missing}')
        for spec in self.tasks:
            self.scalings[spec.name].check_channels(spec.channels, spec.name)

    @property
    def task_names(self) -> list[str]:
        return [t.name for t in self.tasks]

    def task(self, name: str) -> TaskSpec:
        for spec in self.tasks:
            if spec.name == name:
                return spec
        raise UserValueError(f'unknown task {name!r}: this model serves {self.task_names}')

    @property
    def random_backbone(self) -> bool:
        """Whether the backbone was randomly initialized (no pretrained file)."""
        return self.backbone is not None and self.backbone.get('sha256') is None

    @property
    def backbone_stored(self) -> bool:
        """Whether an export holds the backbone's tensors: when training changed them, or when they are random
        and the card records no ``weights_sha256`` of their derivation from the seed. Otherwise the backbone
        is restored from its file (pretrained) or its seed (random), checked by hash."""
        if self.backbone is None:
            return False
        if self.model.get('train_backbone', False):
            return True
        return self.random_backbone and not self.backbone.get('weights_sha256')

    def to_dict(self) -> dict:
        return {
            'format': CARD_FORMAT,
            'model': plain_data(self.model),
            'tasks': [plain_data(dataclasses.asdict(t)) for t in self.tasks],
            'scalings': {name: s.as_dict() for name, s in self.scalings.items()},
            'method': plain_data(self.method),
            'backbone': plain_data(self.backbone),
        }

    @classmethod
    def from_dict(cls, data: Mapping, source: str = 'model card') -> 'ModelCard':
        """From :meth:`to_dict`; ``source`` (the file) is named in errors."""
        missing = [key for key in ('model', 'tasks', 'scalings') if key not in data]
        if missing:
            raise UserValueError(f'{source}: the model card lacks {missing}')
        if data.get('format', CARD_FORMAT) > CARD_FORMAT:
            raise UserValueError(f'{source}: model card format {data["format"]} is newer than this version '
                                 f'reads ({CARD_FORMAT}); update openstl-unistd')
        tasks = tuple(resolve_task(dict(t)) for t in data['tasks'])
        scalings = {name: Scaling.from_dict(s, f"{source}: scaling of task '{name}'")
                    for name, s in data['scalings'].items()}
        return cls(dict(data['model']), tasks, scalings, dict(data.get('method') or {}), data.get('backbone'))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str = 'model card') -> 'ModelCard':
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise UserValueError(f'{source}: the model card is not valid JSON ({error})') from None
        return cls.from_dict(data, source)

    def replace(self, **changes) -> 'ModelCard':
        return dataclasses.replace(self, **changes)

    def build_model(self, pretrained=False) -> nn.Module:
        """The model's architecture; the backbone from ``pretrained`` (``False``: random, a path: that file)."""
        from ..models.registry import create_model

        options = dict(self.model)
        if 'pretrained' in options or pretrained is not False:
            options['pretrained'] = pretrained
        if self.random_backbone and 'seed' in self.backbone:
            options['backbone_seed'] = self.backbone['seed']
        return create_model(options.pop('type'), list(self.tasks), **options)


def backbone_record(model_options: Mapping) -> Optional[dict]:
    """The identity of a model's backbone from its options: scheme, timm name, file and SHA-256 (of a
    pretrained one) or seed (of a random one).

    ``None`` for models without a backbone (the SimVP/TAU/Earthformer baselines).
    """
    from ..modules.backbone import RANDOM_BACKBONE_SEED, pretrained_weights_file, timm_model_name
    from ..modules.pretrained import file_sha256

    if 'backbone' not in model_options:
        return None
    name = model_options['backbone']
    weights = pretrained_weights_file(name, model_options.get('pretrained', False))
    record = {'scheme': name, 'timm_name': timm_model_name(name), 'file': str(weights) if weights else None,
              'sha256': file_sha256(weights) if weights else None}
    if weights is None:
        record['seed'] = model_options.get('backbone_seed', RANDOM_BACKBONE_SEED)
    return record


def card_callback(card: ModelCard):
    """A Lightning callback that writes ``card`` into every checkpoint under :data:`CARD_KEY`."""
    import lightning as L

    class ModelCardCallback(L.Callback):
        def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
            checkpoint[CARD_KEY] = card.to_dict()

    return ModelCardCallback()
