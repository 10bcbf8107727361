"""The process pool every data stage uses: ``spawn`` workers, one torch thread each."""

from __future__ import annotations

import concurrent.futures
import multiprocessing

__all__ = ["process_pool"]


def _one_torch_thread() -> None:
    import torch

    torch.set_num_threads(1)


def process_pool(num_jobs: int) -> concurrent.futures.ProcessPoolExecutor:
    """A pool of ``num_jobs`` spawned processes (fork is unsafe once torch has started threads)."""
    return concurrent.futures.ProcessPoolExecutor(
        num_jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_one_torch_thread)
