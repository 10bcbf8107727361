"""The first lines of a child process's script in which importing torch, torchaudio or lhotse fails:
what a runtime-only install (no training extra) has. Tests prepend :data:`BLOCK_TORCH` to the script
they run with ``python -c``."""

BLOCK_TORCH = r"""
import importlib.abc, json, sys

class NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "torchaudio", "lhotse"):
            raise ImportError(f"{name} is blocked")
        return None

sys.meta_path.insert(0, NoTorch())
"""
