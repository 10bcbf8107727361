"""Build hook: a wheel carries the shipped model and its language model as package data.

``pyproject.toml`` holds the project's metadata; this file only makes ``build_py`` copy
``exp/small/{model.pt,lm.pt,lm.arpa.gz,...}`` (SHIPPED_FILES) and the model's ONNX export
``exp/small/onnx/`` (SHIPPED_ONNX_FILES: what a runtime install without torch runs) into
``asr_ee/shipped/`` of the build, where :mod:`asr_ee.pretrained` looks first. An editable install
(``pip install -e .``) copies nothing: it reads the clone's ``exp/small/`` directly.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SHIPPED_FROM = Path(__file__).resolve().parent / "exp" / "small"
SHIPPED_FILES = ("model.pt", "lm.pt", "lm.arpa.gz", "lm.arpa.gz.json", "model.gate.json")  # the LM as KenLM reads it; the exit gate (JSON: read without torch)


def shipped_onnx_files() -> tuple[str, ...]:
    """The ONNX export scripts/export_shipped_onnx.sh writes: graphs, model.json, tokenizer, LM."""
    return tuple(sorted(f"onnx/{p.name}" for p in (SHIPPED_FROM / "onnx").glob("*") if p.is_file()))


class BuildPyWithShippedModel(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "asr_ee" / "shipped"
        self.mkpath(str(target / "onnx"))
        if "onnx/model.json" not in shipped_onnx_files():
            raise SystemExit(f"setup.py: {SHIPPED_FROM / 'onnx'} holds no export; run scripts/export_shipped_onnx.sh")
        for name in SHIPPED_FILES + shipped_onnx_files():
            source = SHIPPED_FROM / name
            if not source.is_file():
                raise SystemExit(f"setup.py: {source} is missing; the package ships the model and LM from there")
            self.copy_file(str(source), str(target / name))

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        shipped = [str(Path(self.build_lib) / "asr_ee" / "shipped" / name) for name in SHIPPED_FILES + shipped_onnx_files()]
        return super().get_outputs(include_bytecode) + ([] if getattr(self, "editable_mode", False) else shipped)


setup(cmdclass={"build_py": BuildPyWithShippedModel})
