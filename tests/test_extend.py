"""Adding a task to a trained model (init_from + train_only): old tasks bit-identical, only listed weights train."""
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch

from openstl_unistd import load_predictor
from openstl_unistd.core.scaling import Scaling
from openstl_unistd.datasets.demo import DemoAdvection, DemoTraffic, DemoWave
from openstl_unistd.modules.ra_moe import ra_moe_modules
from openstl_unistd.engine.config import build_model, build_tasks, load_config
from openstl_unistd.engine.experiment import train
from openstl_unistd.inference.export import export_model
from openstl_unistd.engine.trained_model_config import card_from_config, extension_from_config
from openstl_unistd.inference.extension import Extension

from .trained import make_trained, save_checkpoint, tiny_vit_file

ROOT = Path(__file__).resolve().parents[1]
OLD, NEW = ['demo_traffic', 'demo_wave'], 'demo_advection'
NEW_ENDS = [f'encoders.{NEW}', f'decoders.{NEW}']
TINY = {
    'model.backbone_kwargs.depth': 1, 'model.hidden_channels': 8, 'data.batch_size': 4, 'data.val_batch_size': 8,
    'data.steps_per_epoch': 12, 'trainer.max_epochs': 1, 'trainer.enable_progress_bar': False,
    'trainer.log_every_n_steps': 1, 'optim.warmup_epochs': 0, 'optim.lr': 3e-3, 'evaluation.figures': False,
    'evaluation.copy_last': False, 'tasks': [*OLD, NEW], 'train_only': NEW_ENDS,
    'data.datasets': {task: dict(num_samples=8) for task in [*OLD, NEW]},
}


def config(**options):
    return load_config(ROOT / 'configs/unistd/extend_demo.py', {**TINY, **options})


def source_model(data_root: Path, path: Path, freeze: bool = True, **options):
    """A 'trained' model of the old tasks built from the extension config, saved as a checkpoint with its card."""
    cfg = config(tasks=OLD, **options)
    tasks = build_tasks(cfg)
    torch.manual_seed(5)
    model = build_model(cfg, tasks)
    make_trained(model, seed=5)
    if not freeze:
        for adapter in ra_moe_modules(model):
            adapter._set_frozen(False)
            adapter.rank_frozen.fill_(False)
    scalings = {'demo_traffic': DemoTraffic(data_root, 'test', num_samples=8).scaling,
                'demo_wave': DemoWave(data_root, 'test', num_samples=8).scaling}
    card = card_from_config(cfg, tasks, scalings)
    return model, save_checkpoint(model, card, path), card


def _inputs(card, count=3):
    rng = np.random.default_rng(0)
    return {t.name: rng.uniform(0, 1, (count, *t.input_shape)).astype(np.float32) for t in card.tasks}


def _loss(model, dataset):
    x, y = (torch.stack(part) for part in zip(*[dataset[i] for i in range(len(dataset))]))
    with torch.no_grad():
        return float(torch.nn.functional.mse_loss(model(x, NEW), y))


def test_the_new_task_learns_while_old_tasks_stay_bit_identical(tmp_path):
    data = tmp_path / 'data'
    old_model, checkpoint, old_card = source_model(data, tmp_path / 'old.ckpt')
    cfg = config(init_from=str(checkpoint))
    tasks = build_tasks(cfg)
    L.seed_everything(int(cfg.get('seed', 0)))
    start = build_model(cfg, tasks)                                     # what train() builds, before training
    extension_from_config(cfg, tasks).apply(start)
    before = {k: v.clone() for k, v in start.state_dict().items()}

    results = train(cfg, tmp_path / 'work', data_root=str(data))
    assert set(results) == {*OLD, NEW}
    extended = load_predictor(tmp_path / 'work/checkpoints/last.ckpt')     # the card written by training
    assert [t.name for t in extended.card.tasks] == [*OLD, NEW]
    assert extended.scalings['demo_wave'].mean == (-1.0,) and extended.scalings[NEW].std == (255.0,)

    after = extended.model.state_dict()
    changed = {k for k in after if not torch.equal(after[k], before[k])}
    listed = {k for k in after if k.startswith(tuple(f'{e}.' for e in NEW_ENDS))}
    trainable = {k for k in listed if not k.endswith(('num_batches_tracked',))}
    assert changed and changed <= listed and changed == trainable      # only and all the listed weights moved
    for key, value in old_model.state_dict().items():
        assert torch.equal(after[key], value), key

    old = load_predictor(checkpoint)
    for task, x in _inputs(old_card).items():
        assert np.array_equal(extended.predict(x, task, horizon=9), old.predict(x, task, horizon=9)), task

    val = DemoAdvection(data, 'val', num_samples=8)
    assert _loss(extended.model, val) < 0.8 * _loss(start.eval(), val)


def test_an_export_extends_like_its_checkpoint(tmp_path):
    old_model, checkpoint, old_card = source_model(tmp_path / 'data', tmp_path / 'old.ckpt')
    export = export_model(checkpoint, tmp_path / 'old.safetensors').path
    cfg = config(init_from=str(export))
    tasks = build_tasks(cfg)
    model = build_model(cfg, tasks).eval()
    card = extension_from_config(cfg, tasks).apply(model)
    assert card.task_names == OLD
    with torch.no_grad():
        for task, x in _inputs(old_card).items():
            assert torch.equal(model(torch.from_numpy(x), task), old_model(torch.from_numpy(x), task)), task
    assert {n for n, p in model.named_parameters() if p.requires_grad} == \
        {n for n, _ in model.named_parameters() if n.startswith(tuple(f'{e}.' for e in NEW_ENDS))}


def test_an_export_with_a_pretrained_backbone_needs_that_backbone(tmp_path):
    weights, other = tiny_vit_file(tmp_path, seed=0), tiny_vit_file(tmp_path, seed=1, name='other.safetensors')
    old_model, checkpoint, old_card = source_model(tmp_path / 'data', tmp_path / 'old.ckpt',
                                                   **{'model.pretrained': str(weights)})
    export = export_model(checkpoint, tmp_path / 'old.safetensors').path
    for backbone, refused in ((weights, False), (other, True)):
        cfg = config(init_from=str(export), **{'model.pretrained': str(backbone)})
        tasks = build_tasks(cfg)
        model = build_model(cfg, tasks).eval()
        extension = extension_from_config(cfg, tasks)
        if refused:
            with pytest.raises(ValueError, match=f"backbone file '{other}' has sha256 .* trained with '{weights}'"):
                extension.apply(model, backbone_file=other)
            continue
        extension.apply(model, backbone_file=weights)
        x = torch.from_numpy(_inputs(old_card)['demo_wave'])
        with torch.no_grad():
            assert torch.equal(model(x, 'demo_wave'), old_model(x, 'demo_wave'))


def test_only_the_tasks_of_listed_ends_are_trained():
    tasks = build_tasks(config())
    assert [t.name for t in extension_from_config(config(init_from=None), tasks).fit_tasks] == [NEW]
    shared = extension_from_config(config(init_from=None, train_only=[*NEW_ENDS, 'backbone.blocks.0.temporal']), tasks)
    assert [t.name for t in shared.fit_tasks] == [*OLD, NEW]
    assert extension_from_config({'tasks': []}, tasks) is None


def test_extension_errors_name_what_is_wrong(tmp_path):
    data = tmp_path / 'data'
    _, checkpoint, card = source_model(data, tmp_path / 'old.ckpt')
    _, searching, _ = source_model(data, tmp_path / 'searching.ckpt', freeze=False)
    with pytest.raises(ValueError, match=r"task 'demo_wave' was trained with scaling \{'mean': \[-1.0\], 'std': \[2.0\]\}, "
                                         r"its data now gives \{'mean': \[0.0\], 'std': \[1.0\]\}"):
        Extension(checkpoint, tuple(NEW_ENDS), ()).check_scalings(card, {'demo_wave': Scaling()})

    def apply(**options):
        cfg = config(**options)
        tasks = build_tasks(cfg)
        extension_from_config(cfg, tasks).apply(build_model(cfg, tasks))

    with pytest.raises(ValueError, match=r"ranks are still being searched .* but train_only does not list them"):
        apply(init_from=str(searching))
    with pytest.raises(ValueError, match=r"train_only: \['encoders.demo_rain'\] name no parameter of the model; "
                                         r"e.g. \['decoders.demo_advection'"):
        apply(init_from=str(checkpoint), train_only=['encoders.demo_rain'])
    with pytest.raises(ValueError, match=r"parameters are neither in the file nor in train_only.*decoders.demo_advection"):
        apply(init_from=str(checkpoint), train_only=[f'encoders.{NEW}'])
    with pytest.raises(ValueError, match=r"task 'demo_wave' was trained as .*output_frames=12.*the config has .*"
                                         r"output_frames=8"):
        apply(init_from=str(checkpoint), tasks=['demo_traffic', dict(name='demo_wave', output_frames=8), NEW])
    with pytest.raises(ValueError, match=r"the trained model serves \['demo_wave'\], which the config's tasks lack"):
        apply(init_from=str(checkpoint), tasks=['demo_traffic', NEW])
    with pytest.raises(FileNotFoundError, match="init_from: '.*missing.ckpt' not found"):
        apply(init_from=str(tmp_path / 'missing.ckpt'))


def test_an_extension_checks_the_hashes_of_its_export_and_its_random_backbone(tmp_path):
    from .test_export import _rewrite, _zero_one_lora_tensor

    _, checkpoint, _ = source_model(tmp_path / 'data', tmp_path / 'old.ckpt')
    export = export_model(checkpoint, tmp_path / 'old.safetensors').path
    tampered = _rewrite(export, tmp_path / 'tampered.safetensors', change_tensors=_zero_one_lora_tensor)

    def apply(**options):
        cfg = config(**options)
        tasks = build_tasks(cfg)
        extension_from_config(cfg, tasks).apply(build_model(cfg, tasks))

    with pytest.raises(ValueError, match=f'{tampered}: its tensors do not have the SHA-256 the export records'):
        apply(init_from=str(tampered))
    with pytest.raises(ValueError, match=f"init_from {export}: the config's random backbone .* is not the one the "
                                         r'export was trained with .*set model.backbone_seed=0'):
        apply(init_from=str(export), **{'model.backbone_seed': 1})


def test_a_checkpoint_whose_random_backbone_had_another_seed_is_refused():
    from openstl_unistd.engine.trained_model_config import training_card

    cfg = config(tasks=OLD)
    tasks = build_tasks(cfg)
    scalings = {name: Scaling() for name in OLD}
    inherited = card_from_config(cfg, tasks, scalings)
    assert inherited.backbone['seed'] == 0
    assert training_card(cfg, tasks, [], inherited).backbone['seed'] == 0
    with pytest.raises(ValueError, match=r"init_from: the model's random backbone was drawn with seed 0, the config's "
                                         r'model has backbone_seed=2; set model.backbone_seed=0'):
        training_card(config(tasks=OLD, **{'model.backbone_seed': 2}), tasks, [], inherited)
