"""ember.optimizers schedules against upstream mlx.optimizers, value by value."""

import mlx.core as mlx
import mlx.optimizers as mopt
import pytest

import ember.core as mx
import ember.optimizers as eopt
from tests.nn.parity import assert_tree_same

SCHEDULES = {
    "exponential": lambda o: o.exponential_decay(0.1, 0.9),
    "exponential_int": lambda o: o.exponential_decay(2, 0.5),
    "step": lambda o: o.step_decay(0.1, 0.9, 3),
    "step_1": lambda o: o.step_decay(1.0, 0.5, 1),
    "cosine": lambda o: o.cosine_decay(0.1, 10),
    "cosine_end": lambda o: o.cosine_decay(1e-2, 7, end=1e-3),
    "linear": lambda o: o.linear_schedule(0.0, 0.1, 8),
    "linear_down": lambda o: o.linear_schedule(1.0, 0.2, 5),
    "join": lambda o: o.join_schedules([o.linear_schedule(0.0, 0.1, 4), o.cosine_decay(0.1, 10)],
                                       [4]),
    "join3": lambda o: o.join_schedules(
        [o.linear_schedule(1e-3, 1e-2, 3), o.exponential_decay(1e-2, 0.8),
         o.step_decay(5e-3, 0.5, 2)], [3, 9]),
    "join_one": lambda o: o.join_schedules([o.cosine_decay(0.5, 6)], []),
}


def _same(e, m, msg):
    if isinstance(m, mlx.array):
        assert_tree_same({"v": e}, {"v": m}, None, msg)
    else:  # plain Python numbers stay plain numbers
        assert type(e) is type(m) and e == pytest.approx(m), msg


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_values_at_uint64_steps(name):
    """As an optimizer calls them: the step is a uint64 array."""
    es, ms = SCHEDULES[name](eopt), SCHEDULES[name](mopt)
    for step in range(25):
        _same(es(mx.array(step, mx.uint64)), ms(mlx.array(step, mlx.uint64)), f"{name} {step}")


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_values_at_other_steps(name):
    """Called by hand: Python ints and int32 / float32 arrays."""
    es, ms = SCHEDULES[name](eopt), SCHEDULES[name](mopt)
    for step in [0, 1, 5, 12, 30]:
        try:
            m = ms(step)
        except Exception as exc:
            with pytest.raises(type(exc)):
                es(step)
        else:
            _same(es(step), m, f"{name} int {step}")
        _same(es(mx.array(step)), ms(mlx.array(step)), f"{name} int32 {step}")
        _same(es(mx.array(float(step))), ms(mlx.array(float(step))), f"{name} float {step}")


def test_optimizer_steps_through_schedule():
    """The learning rate in the state follows the schedule, one value per update."""
    for name in sorted(SCHEDULES):
        eo, mo = eopt.SGD(SCHEDULES[name](eopt)), mopt.SGD(SCHEDULES[name](mopt))
        for i in range(15):
            _same(eo.learning_rate, mo.learning_rate, f"{name} {i}")
            eo.update({}, {})
            mo.update({}, {})


BAD = [
    lambda o: o.step_decay(0.1, 0.9, 0),
    lambda o: o.step_decay(0.1, 0.9, -2),
    lambda o: o.cosine_decay(0.1, 0),
    lambda o: o.linear_schedule(0.0, 1.0, 0),
    lambda o: o.join_schedules([], []),
    lambda o: o.join_schedules([o.cosine_decay(0.1, 5)], [3]),
    lambda o: o.join_schedules([o.cosine_decay(0.1, 5), o.cosine_decay(0.1, 5)], []),
]


@pytest.mark.parametrize("i", range(len(BAD)))
def test_bad_arguments(i):
    with pytest.raises(Exception) as m:
        BAD[i](mopt)
    with pytest.raises(type(m.value)) as e:
        BAD[i](eopt)
    assert str(e.value) == str(m.value)
