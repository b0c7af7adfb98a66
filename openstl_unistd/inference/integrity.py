"""The SHA-256 hashes an export carries, and the checks that refuse a file whose contents differ from them.

An export's metadata records ``tensors_sha256``, one hash over every tensor it holds (in name order: the
name, dtype, shape and bytes of each), and ``card_sha256``, the hash of its model card's JSON text as
stored. Reading the export recomputes both: a tensor or a card changed after ``tools/export.py`` wrote
the file (or damaged on the way) is refused, naming the file. A backbone the export does not hold is
checked too: a pretrained one by the SHA-256 of its weights file, a random one by ``weights_sha256``,
the same tensor hash over the backbone that its recorded seed derives.

The hashes detect a changed or damaged file; they are no signature: whoever can rewrite the file can
rewrite them too. Like a checkpoint, an export is read as data only (``safetensors``), never executed.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Mapping, Union

import torch

from ..errors import UserValueError

TENSORS_KEY = 'tensors_sha256'
CARD_HASH_KEY = 'card_sha256'
"""Metadata keys of an export's hashes."""


class IntegrityError(UserValueError):
    """A file whose contents are not what its recorded hashes say."""


def tensors_sha256(state: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 over ``state`` in name order: each tensor's name, dtype, shape and bytes (on the CPU)."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().to('cpu').contiguous()
        digest.update(f'{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0'.encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode('utf-8')).hexdigest()


def export_hashes(state: Mapping[str, torch.Tensor], card_json: str) -> dict[str, str]:
    """The metadata entries that :func:`check_export_hashes` checks."""
    return {TENSORS_KEY: tensors_sha256(state), CARD_HASH_KEY: text_sha256(card_json)}


def check_export_hashes(path: Union[str, Path], state: Mapping[str, torch.Tensor], metadata: Mapping[str, str],
                        card_json: str) -> None:
    """Raise an :class:`IntegrityError` naming ``path`` unless its tensors and card have the recorded hashes."""
    for key, what in ((TENSORS_KEY, 'tensors'), (CARD_HASH_KEY, 'model card')):
        if not metadata.get(key):
            raise IntegrityError(f'{path}: the export records no SHA-256 of its {what} ({key!r}), so nothing shows '
                                 'that it is the file tools/export.py wrote; export its checkpoint again')
    actual = tensors_sha256(state)
    if actual != metadata[TENSORS_KEY]:
        raise IntegrityError(f'{path}: its tensors do not have the SHA-256 the export records ({len(state)} tensors '
                             f'give {actual}, recorded {metadata[TENSORS_KEY]}): the file was changed after it was '
                             'exported, or damaged; refusing it')
    actual = text_sha256(card_json)
    if actual != metadata[CARD_HASH_KEY]:
        raise IntegrityError(f'{path}: its model card does not have the SHA-256 the export records (it gives '
                             f'{actual}, recorded {metadata[CARD_HASH_KEY]}): the card (tasks, scalings, options) '
                             'was changed after it was exported, or damaged; refusing it')
