import math

import pytest

from openstl_unistd.core.schedules import warmup_cosine


def test_warmup_rises_linearly_then_cosine_decays_to_min():
    lr = lambda s: warmup_cosine(s, total_steps=110, warmup_steps=10, base_lr=1.0, warmup_lr=1e-8, min_lr=0.1)  # noqa: E731
    assert lr(0) == pytest.approx(1e-8)
    assert lr(5) == pytest.approx(1e-8 + (1 - 1e-8) * 0.5)
    assert lr(10) == pytest.approx(1.0)
    assert lr(60) == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi / 2)))
    assert lr(110) == pytest.approx(0.1) and lr(500) == pytest.approx(0.1)
    assert all(lr(s) >= lr(s + 1) for s in range(10, 110))
