"""Fixtures of the microphone-app tests: the app module (:mod:`asr_ee.micapp.app`)."""

from __future__ import annotations

from types import ModuleType

import pytest
import torch

from asr_ee.micapp import app as app_module


@pytest.fixture(scope="session")
def app() -> ModuleType:
    return app_module


@pytest.fixture(autouse=True)
def restore_torch_threads():
    """The app sets torch's thread count (``--threads``, default 1); put it back after each test."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture
def file_sources(app: ModuleType, monkeypatch: pytest.MonkeyPatch) -> list:
    """The FileSource objects the app creates during the test, in order."""
    main_module = app
    created: list = []

    class RecordedFileSource(main_module.FileSource):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            created.append(self)

    monkeypatch.setattr(main_module, "FileSource", RecordedFileSource)
    return created
