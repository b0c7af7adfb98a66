"""Shared test settings: offline, small thread pool, tiny backbones."""
import os

os.environ.setdefault('HF_HUB_OFFLINE', '1')

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(min(2, torch.get_num_threads()))

TINY_BACKBONE = dict(backbone='vit_tiny_patch16_224', backbone_kwargs=dict(depth=2))
"""A ViT of width 192 and depth 2: the backbone of every test that trains or runs many tasks."""


@pytest.fixture
def tiny_unistd():
    """Factory of small UniSTD models over the given tasks."""
    from openstl_unistd.models import UniSTD

    def make(tasks, **kwargs):
        options = dict(TINY_BACKBONE, hidden_channels=8)
        options.update(kwargs)
        return UniSTD(tasks, **options)

    return make


def pytest_configure(config):
    config.addinivalue_line('markers', 'openstl: needs a real OpenSTL (make test-openstl OPENSTL_SRC=...)')


_skipped_while_required = []


def pytest_runtest_logreport(report):
    """Under ``OPENSTL_REQUIRED=1`` (make test-openstl) a skipped test is remembered, to fail the session."""
    if report.skipped and os.environ.get('OPENSTL_REQUIRED') == '1':
        _skipped_while_required.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    if _skipped_while_required and exitstatus == 0:
        print(f'\nOPENSTL_REQUIRED=1 but {len(_skipped_while_required)} test(s) skipped: {_skipped_while_required}')
        session.exitstatus = 1
