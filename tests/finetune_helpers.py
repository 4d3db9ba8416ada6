"""Shared set-up for the fine-tuning and analysis tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One intra-op thread, restored afterwards, with torch's determinism flags.

    The tensors in these tests are tiny, so a second thread costs more than it saves (2–3× slower when
    other processes share the cores); TrainConfig(deterministic=True) switches a global flag.
    """
    threads = torch.get_num_threads()
    enabled = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(enabled, warn_only=warn_only)
