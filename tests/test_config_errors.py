"""Config and command-line errors: one ``error:`` line naming the key or file, the expected and the given
value, raised before the work dir is claimed (nothing written there) and before any data is generated."""
import lightning  # noqa: F401  (imported here, its log handler writes to stderr, not to one test's captured stream)
import numpy as np
import pytest

from openstl_unistd.engine.config import load_config
from openstl_unistd.errors import UserKeyError

from .tools import DEMO, SMALL, run, tool


def assert_one_line_before_any_work(status, err, tmp_path, *fragments, data_made=False):
    assert status == 2, err
    lines = [line for line in err.strip().splitlines() if not line.startswith('INFO: ')]     # Lightning's log
    assert 'Traceback' not in err and len(lines) == 1 and lines[0].startswith('error: '), err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    assert not (tmp_path / 'work').exists()                      # the work dir was never claimed
    if not data_made:
        assert not (tmp_path / 'data').exists()                  # nor any data generated


def train(tmp_path, capsys, *argv):
    return run('train', '-c', DEMO, '--work-dir', tmp_path / 'work', '--data-root', tmp_path / 'data', *SMALL,
               *argv, capsys=capsys)


@pytest.mark.parametrize('option,fragments', [
    ('model.hiden_channels=4', ["config section 'model' (UniSTD): unknown key(s) ['hiden_channels']",
                                "'hidden_channels'"]),
    ('model.backbone_kwargs.dpth=1', ['config key model.backbone_kwargs.dpth (given 1): ',
                                      "unexpected keyword argument 'dpth'"]),
    ('tasks=rain', ["config key tasks: unknown task 'rain'; known tasks: "]),
    ('data.sampling=uniformm', ["config key data.sampling: expected 'proportional', 'uniform' or a temperature > 0, "
                                "got 'uniformm' (str)"]),
    ('model.pretrained=/nonexistent/vit.pt', ["pretrained weights file '/nonexistent/vit.pt' not found"]),
    ('init_from=/nonexistent/run.ckpt', ["init_from: '/nonexistent/run.ckpt' not found"]),
    ('model.lora=dict(max_rank=4,min_rank=1)', ["model.lora: unknown key(s) ['min_rank']"]),
    ("model.lora={'max_rank':4,'rank':1}", ["model.lora: unknown key(s) ['rank']"]),
    ('model.lora=dict(max_rank=4', ['--cfg-options model.lora: cannot read', "'dict(max_rank=4'"]),
    ('tasks=[demo_digits', ['--cfg-options tasks: cannot read', "'[demo_digits'"]),
], ids=['model-key', 'backbone-kwarg', 'tasks-one-string', 'sampling', 'pretrained-file', 'init_from',
        'dict-call', 'dict-literal', 'unclosed-dict', 'unclosed-list'])
def test_a_bad_option_is_one_line_before_the_work_dir_is_claimed(tmp_path, capsys, option, fragments):
    status, err = train(tmp_path, capsys, option)
    assert_one_line_before_any_work(status, err, tmp_path, *fragments)


def test_devices_that_are_not_a_number_name_the_option(tmp_path, capsys):
    status, err = train(tmp_path, capsys, '--devices', 'two')
    assert_one_line_before_any_work(status, err, tmp_path, "--devices: expected a number of devices, 'auto' or "
                                                           "device indices like 0,1; got 'two'")
    status, err = run('test', '-c', DEMO, '--ckpt', __file__, '--work-dir', tmp_path / 'work', '--devices', 'two',
                      capsys=capsys)
    assert_one_line_before_any_work(status, err, tmp_path, "--devices: expected a number of devices")


def config_file(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize('case', ['section-not-a-dict', 'syntax', 'base-cycle', 'runtime', 'missing-base'])
def test_a_bad_config_file_is_named_in_one_line(tmp_path, capsys, case):
    if case == 'section-not-a-dict':
        config = config_file(tmp_path, 'flat.py', f'_base_ = [{DEMO!r}]\noptim = 0.001\n')
        fragments = [f'config {str(config)!r}: key optim: expected a dict of options', 'got 0.001 (float)']
    elif case == 'syntax':
        config = config_file(tmp_path, 'broken.py', f'_base_ = [{DEMO!r}]\nmodel = dict(hidden_channels=8\n')
        fragments = [f"config {str(config)!r}, line 2: SyntaxError: '(' was never closed"]
    elif case == 'base-cycle':
        config = config_file(tmp_path, 'a.py', "_base_ = ['./b.py']\nseed = 1\n")
        config_file(tmp_path, 'b.py', "_base_ = ['./a.py']\nseed = 2\n")
        fragments = [f"config {str(config)!r}: its _base_ files form a cycle: {config} → {tmp_path / 'b.py'} → {config}"]
    elif case == 'runtime':
        config = config_file(tmp_path, 'runtime.py', f'_base_ = [{DEMO!r}]\nseed = 1\nlr = undefined_name\n')
        fragments = [f"config {str(config)!r}, line 3: NameError: name 'undefined_name' is not defined"]
    else:
        config = config_file(tmp_path, 'orphan.py', "_base_ = ['./gone.py']\n")
        fragments = [f"config {str(config)!r}: _base_ file {str(tmp_path / 'gone.py')!r} not found"]
    status, err = run('train', '-c', config, '--work-dir', tmp_path / 'work', '--data-root', tmp_path / 'data',
                      capsys=capsys)
    assert_one_line_before_any_work(status, err, tmp_path, *fragments)


def parsed_options(*options):
    """``--cfg-options`` as the tools parse them."""
    return tool('train').parser().parse_args(['-c', DEMO, '--cfg-options', *options]).cfg_options


def test_cfg_options_take_dict_values_that_merge_into_the_dicts_they_name(tmp_path):
    options = parsed_options('model.lora=dict(max_rank=4, top_k=2)', "data.datasets={'demo_digits': {'num_samples': 6}}",
                             'tasks=[dict(name=demo_digits,output_frames=2),demo_traffic]', 'optim.lr=0.5',
                             'trainer.devices=0,1')
    assert options == {'model.lora': {'max_rank': 4, 'top_k': 2},
                       'data.datasets': {'demo_digits': {'num_samples': 6}},
                       'tasks': [{'name': 'demo_digits', 'output_frames': 2}, 'demo_traffic'],
                       'optim.lr': 0.5, 'trainer.devices': [0, 1]}       # mmengine's own syntax unchanged
    cfg = load_config(DEMO, options)
    base = load_config(DEMO)
    assert cfg.model.lora == {**base.model.lora, 'max_rank': 4, 'top_k': 2}      # merged, as a _base_ child merges
    assert cfg.data.datasets.demo_digits.num_samples == 6 and 'demo_traffic' in cfg.data.datasets
    assert cfg.tasks == [{'name': 'demo_digits', 'output_frames': 2}, 'demo_traffic']
    replaced = load_config(DEMO, parsed_options('model.lora=dict(_delete_=True,max_rank=3)'))
    assert replaced.model.lora == {'max_rank': 3}
    switched = load_config(DEMO, parsed_options('model.lora=False'))
    assert switched.model.lora is False
    plain = config_file(tmp_path, 'plain.py', f'_base_ = [{DEMO!r}]\nmodel = dict(lora=False)\n')
    assert load_config(plain, parsed_options('model.lora=dict(max_rank=3)')).model.lora == {'max_rank': 3}
    added = load_config(DEMO, parsed_options('data.datasets.demo_wave=dict(num_samples=10)'))     # a new key
    assert added.data.datasets.demo_wave == {'num_samples': 10}


def test_a_dict_value_is_read_as_data_never_run(tmp_path):
    marker = tmp_path / 'ran'
    with pytest.raises(ValueError, match=r'--cfg-options model.lora: cannot read'):
        parsed_options(f"model.lora=dict(max_rank=__import__('os').system('touch {marker}'))")
    assert not marker.exists()


def test_top_level_keys_can_be_set_from_the_command_line_when_the_config_lacks_them(tmp_path):
    assert 'init_from' not in load_config(DEMO)
    cfg = load_config(DEMO, parsed_options('init_from=work_dirs/pair/checkpoints/last.ckpt',
                                           'train_only=[encoders.demo_traffic,decoders.demo_traffic]'))
    assert cfg.init_from == 'work_dirs/pair/checkpoints/last.ckpt'
    assert cfg.train_only == ['encoders.demo_traffic', 'decoders.demo_traffic']
    with pytest.raises(KeyError, match=r"unknown key\(s\) \['init_frm'\]; they do not exist"):
        load_config(DEMO, {'init_frm': 'x.ckpt'})


def test_a_single_task_name_is_one_task(tmp_path):
    from openstl_unistd.engine.config import build_tasks

    assert [t.name for t in build_tasks(load_config(DEMO, parsed_options('tasks=demo_traffic')))] == ['demo_traffic']


def test_non_finite_test_data_stops_the_run_before_training(tmp_path, capsys):
    """A NaN in the last sample of the test split is found before any training, not after it."""
    data = np.random.default_rng(0).uniform(0, 1, (20, 4, 1, 16, 16)).astype(np.float32)
    data[19, 3, 0, 5, 7] = np.nan                                   # test split: rows 18–19
    (tmp_path / 'data').mkdir()
    np.save(tmp_path / 'data' / 'rain.npy', data)
    config = config_file(tmp_path, 'rain.py', f"""_base_ = [{DEMO!r}]
tasks = [dict(name='rain', input_frames=2, output_frames=2, channels=1, height=16, width=16, encoder_depth=1)]
data = dict(datasets=dict(_delete_=True, rain=dict(type='arrays', path='rain.npy')), steps_per_epoch=2, batch_size=2)
""")
    status, err = run('train', '-c', config, '--work-dir', tmp_path / 'work', '--data-root', tmp_path / 'data',
                      '--cfg-options', 'model.backbone_kwargs.depth=1', 'model.hidden_channels=8',
                      'trainer.max_epochs=1', capsys=capsys)
    assert_one_line_before_any_work(status, err, tmp_path, "task 'rain', split 'test', sample 1",
                                    f"{tmp_path / 'data' / 'rain.npy'}, 'array' row 19", '1 non-finite value(s) (1 NaN',
                                    data_made=True)


def _raise_unknown_key(site: str, tmp_path):
    """Give each former unknown-key check of the package one misspelt key."""
    from openstl_unistd.datasets.registry import build_dataset
    from openstl_unistd.engine.config import check_config
    from openstl_unistd.models.unistd import UniSTD
    from openstl_unistd.tasks import DEMO_TASKS, resolve_task

    if site == 'top-level':
        check_config(load_config(DEMO, {'trainr': dict(max_epochs=1)}))
    elif site == 'cfg-options':
        load_config(DEMO, {'trainr.max_epochs': 1})
    elif site == 'section':
        check_config(load_config(DEMO, {'optim.lrr': 1}))
    elif site == 'model option':
        UniSTD([DEMO_TASKS['demo_digits']], backbone='random', lora=dict(max_rnk=4))
    elif site == 'loader option':
        build_dataset(DEMO_TASKS['demo_digits'], 'train', tmp_path, dict(num_sampels=3))
    elif site == 'task entry':
        resolve_task(dict(name='rain', frames=3))


@pytest.mark.parametrize('site, key', [('top-level', 'trainr'), ('cfg-options', 'trainr.max_epochs'),
                                       ('section', 'lrr'), ('model option', 'max_rnk'),
                                       ('loader option', 'num_sampels'), ('task entry', 'frames')])
def test_every_unknown_key_check_is_the_one_check_and_names_the_key(tmp_path, site, key):
    """Breaks when a part of the package checks unknown keys with a check of its own again (then the error is
    not raised by errors.check_known_keys, or is no UserKeyError), or when the key is not named."""
    import traceback

    with pytest.raises(UserKeyError) as caught:
        _raise_unknown_key(site, tmp_path)
    assert f"unknown key(s) ['{key}']" in str(caught.value)
    assert traceback.extract_tb(caught.value.__traceback__)[-1].name == 'check_known_keys'


def test_the_one_check_gives_the_reason_a_key_has_no_place_here():
    """The OpenSTL plugin's refusal of keys that only our tools take goes through the same check: breaks when
    ``reasons`` or ``valid`` are dropped from the message."""
    from openstl_unistd.errors import check_known_keys

    with pytest.raises(UserKeyError) as caught:
        check_known_keys({'lr': 1, 'work_dir': 'w', 'trainr': 2}, {'lr'}, "OpenSTL config 'my.py' for method 'unistd'",
                         reasons={'work_dir': 'an option of tools/train.py'}, valid="the method's own keys are ['lr']")
    assert str(caught.value) == ("OpenSTL config 'my.py' for method 'unistd': unknown key(s) ['trainr', 'work_dir']; "
                                 "'work_dir' is an option of tools/train.py; the method's own keys are ['lr']")
