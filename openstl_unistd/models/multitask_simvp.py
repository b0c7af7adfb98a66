"""SimVP v1, SimVP v2 and TAU trained jointly on many tasks: one shared translator, per-task ends.

The SimVP translator mixes the stacked frames ``(B, T·hid_S, H', W')`` with convolutions, so it
works at any spatial size but needs one fixed ``T``. Each task therefore gets its own spatial
encoder and decoder (its ``C``) and, when its lengths differ from the shared ``frames``, a 1×1
convolution into the translator (``T·hid_S → frames·hid_S``) and one out of it
(``frames·hid_S → T'·hid_S``). A task whose ``T = T' = frames`` sees exactly OpenSTL's SimVP.
"""
from __future__ import annotations

from typing import Mapping, Optional, Sequence

import torch
from torch import nn

from ..errors import UserValueError
from ..modules.simvp_blocks import MidIncepNet, MidMetaNet
from ..tasks import TaskLike
from .base import MultiTaskModel
from .registry import register_model
from .simvp import TRANSLATOR_KINDS, SimVPDecoder, SimVPEncoder, check_spatial_depth


def _frame_projection(frames_in: int, frames_out: int, channels: int) -> nn.Module:
    """1×1 convolution between stacked lengths, or the identity when they are equal."""
    if frames_in == frames_out:
        return nn.Identity()
    return nn.Conv2d(frames_in * channels, frames_out * channels, kernel_size=1)


@register_model('SimVP')
class MultiTaskSimVP(MultiTaskModel):
    """``forward(x (B, T, C, H, W), task) → (B, T', C, H, W)`` with a shared SimVP translator.

    Args:
        tasks: the tasks served.
        model_type: 'incepu' (SimVP v1), 'gsta' (SimVP v2) or 'tau' (TAU).
        hid_S, hid_T, N_S, N_T, mlp_ratio, drop, drop_path, spatio_kernel_enc, spatio_kernel_dec: as
            OpenSTL's ``SimVP_Model``: spatial encoder/decoder width, translator width, encoder (and
            decoder) layers (even; H and W are halved ``N_S / 2`` times), translator stages, MLP ratio,
            dropout and stochastic depth of the gSTA/TAU blocks, encoder and decoder kernel sizes.
        frames: stacked length the translator sees; default the longest input among the tasks.
        spatial_depths: ``N_S`` per task where it should differ from ``N_S`` (e.g. more halvings for
            SEVIR's 384×384 frames).
        decode: ``'rollout'`` (each task a ``T → T`` model rolled out to ``T'``, as OpenSTL's SimVP method)
            or ``'direct'`` (one pass to ``T'`` frames).

    When a pass gives as many frames as it reads, the decoder adds each frame's own first encoder map
    (SimVP's skip); otherwise every output frame gets the last input frame's map.
    """

    def __init__(self, tasks: Sequence[TaskLike], model_type: str = 'gsta', hid_S: int = 64, hid_T: int = 512,
                 N_S: int = 4, N_T: int = 8, frames: Optional[int] = None, mlp_ratio: float = 8.0, drop: float = 0.0,
                 drop_path: float = 0.0, spatio_kernel_enc: int = 3, spatio_kernel_dec: int = 3,
                 spatial_depths: Optional[Mapping[str, int]] = None, decode: str = 'rollout') -> None:
        super().__init__(tasks, decode)
        kind = model_type.lower()
        if kind not in TRANSLATOR_KINDS:
            raise UserValueError(f'model_type must be one of {TRANSLATOR_KINDS}, got {model_type!r}')
        depths = {name: N_S for name in self.tasks}
        unknown = sorted(set(spatial_depths or {}) - set(self.tasks))
        if unknown:
            raise UserValueError(f'spatial_depths given for task(s) {unknown} this model does not serve')
        depths.update(spatial_depths or {})
        for name, spec in self.tasks.items():
            check_spatial_depth(depths[name])
            factor = 2 ** (depths[name] // 2)
            if spec.height % factor or spec.width % factor:
                raise UserValueError(f"task '{name}': H and W must be multiples of 2 ** (N_S // 2) = {factor} "
                                     f'for N_S={depths[name]}, got H={spec.height}, W={spec.width}')
        self.model_type = kind
        self.spatial_depths = depths
        self.hid_S = hid_S
        self.frames = frames or max(spec.input_frames for spec in self.tasks.values())
        self.encoders = nn.ModuleDict({
            name: SimVPEncoder(spec.channels, hid_S, depths[name], spatio_kernel_enc) for name, spec in self.tasks.items()})
        self.to_translator = nn.ModuleDict({
            name: _frame_projection(spec.input_frames, self.frames, hid_S) for name, spec in self.tasks.items()})
        if kind == 'incepu':
            self.translator = MidIncepNet(self.frames * hid_S, hid_T, N_T)
        else:
            self.translator = MidMetaNet(self.frames * hid_S, hid_T, N_T, kind, mlp_ratio, drop, drop_path)
        self.from_translator = nn.ModuleDict({
            name: _frame_projection(self.frames, self.pass_frames(name), hid_S) for name in self.tasks})
        self.decoders = nn.ModuleDict({
            name: SimVPDecoder(hid_S, spec.channels, depths[name], spatio_kernel_dec) for name, spec in self.tasks.items()})

    def repeated_regions(self) -> list[tuple[str, nn.Module]]:
        """The shared translator (one module: every task's latent grid goes through it)."""
        return [('translator', self.translator)]

    def latent_grid(self, task: str) -> tuple[int, int]:
        """``(H', W')`` the translator sees: ``N_S // 2`` halvings of the task's frames."""
        spec, factor = self.task(task), 2 ** (self.spatial_depths[task] // 2)
        return spec.height // factor, spec.width // factor

    def step(self, x: torch.Tensor, task: str) -> torch.Tensor:
        """One pass ``(B, T, C, H, W)`` → ``(B, F, C, H, W)``."""
        B, T, C, H, W = x.shape
        T_out = self.pass_frames(task)
        latent, skip = self.encoders[task](x.reshape(B * T, C, H, W))
        _, hid, H_, W_ = latent.shape
        z = self.to_translator[task](latent.reshape(B, T * hid, H_, W_))
        z = self.from_translator[task](self.translator(z))
        if T_out != T:
            skip = skip.reshape(B, T, hid, H, W)[:, -1:].expand(B, T_out, hid, H, W).reshape(B * T_out, hid, H, W)
        y = self.decoders[task](z.reshape(B * T_out, hid, H_, W_), skip)
        return y.reshape(B, T_out, C, H, W)
