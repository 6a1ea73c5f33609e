"""Samplers: turn a dataset split into an iterator of padded, batch-first batches."""

from flambe.sampler.base import BaseSampler, collate_fn, pad_column
from flambe.sampler.episodic import EpisodicSampler
from flambe.sampler.sampler import Sampler

__all__ = ["Sampler", "BaseSampler", "EpisodicSampler", "collate_fn", "pad_column"]
