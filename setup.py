"""Build hook: a wheel carries the shipped model and its language model as package data.

``pyproject.toml`` holds the project's metadata; this file only makes ``build_py`` copy
``exp/small/{model.pt,lm.pt,lm.arpa.gz,...}`` (SHIPPED_FILES) into ``asr_ee/shipped/`` of the build, where
:mod:`asr_ee.pretrained` looks first. An editable install (``pip install -e .``) copies nothing:
it reads the clone's ``exp/small/`` directly.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SHIPPED_FROM = Path(__file__).resolve().parent / "exp" / "small"
SHIPPED_FILES = ("model.pt", "lm.pt", "lm.arpa.gz", "lm.arpa.gz.json", "model.gate.pt")  # the LM as KenLM reads it; the exit gate


class BuildPyWithShippedModel(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "asr_ee" / "shipped"
        self.mkpath(str(target))
        for name in SHIPPED_FILES:
            source = SHIPPED_FROM / name
            if not source.is_file():
                raise SystemExit(f"setup.py: {source} is missing; the package ships the model and LM from there")
            self.copy_file(str(source), str(target / name))

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        shipped = [str(Path(self.build_lib) / "asr_ee" / "shipped" / name) for name in SHIPPED_FILES]
        return super().get_outputs(include_bytecode) + ([] if getattr(self, "editable_mode", False) else shipped)


setup(cmdclass={"build_py": BuildPyWithShippedModel})
