"""Fixtures of the microphone-app tests: the app module, loaded the way ``asr-ee mic`` loads it."""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest
import torch

from asr_ee.commands.mic import load_app

load_app()  # registers the repository's ``apps`` package, whatever the working directory


@pytest.fixture(scope="session")
def app() -> ModuleType:
    return load_app()


@pytest.fixture(autouse=True)
def restore_torch_threads():
    """The app sets torch's thread count (``--threads``, default 1); put it back after each test."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture
def file_sources(app: ModuleType, monkeypatch: pytest.MonkeyPatch) -> list:
    """The FileSource objects the app creates during the test, in order."""
    main_module = importlib.import_module("apps.micapp.main")  # (``apps.micapp.main`` is also the function)
    created: list = []

    class RecordedFileSource(main_module.FileSource):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            created.append(self)

    monkeypatch.setattr(main_module, "FileSource", RecordedFileSource)
    return created
