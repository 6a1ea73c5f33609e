"""Trials are seeded from the experiment's seed and the variant's id."""

import random

import torch

from flambe.experiment.trial import seed_everything


def _draw():
    return random.random(), torch.rand(3).tolist()


def test_same_key_same_draws_and_other_keys_differ():
    seed_everything("0:abc")
    first = _draw()
    seed_everything("0:abc")
    assert _draw() == first
    seed_everything("1:abc")
    assert _draw() != first
    seed_everything("0:abd")
    assert _draw() != first


def test_models_built_after_seeding_have_identical_weights():
    seed_everything("7:variant")
    a = torch.nn.Linear(4, 3)
    seed_everything("7:variant")
    b = torch.nn.Linear(4, 3)
    assert torch.equal(a.weight, b.weight)
