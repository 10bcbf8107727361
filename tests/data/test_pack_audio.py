"""scripts/pack_corpus_audio.py: a corpus's audio packed as Opus unpacks to the original paths, with
the manifests' sample counts, close to the original samples, and never overwrites a file."""

from __future__ import annotations

import gzip
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
from lhotse import CutSet

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "pack_corpus_audio.py"


def _relocated_copy(corpus: Path, dest: Path) -> Path:
    """A copy of the corpus whose manifests point at the copy's own audio."""
    shutil.copytree(corpus, dest)
    for manifest in dest.glob("cuts_*.jsonl.gz"):
        text = gzip.decompress(manifest.read_bytes()).decode().replace(str(corpus), str(dest))
        manifest.write_bytes(gzip.compress(text.encode()))
    return dest


def test_pack_then_unpack_restores_the_audio(tiny_corpus: Path, tmp_path: Path) -> None:
    data = _relocated_copy(tiny_corpus, tmp_path / "corpus")
    pack = tmp_path / "pack"
    run = [sys.executable, str(SCRIPT)]
    subprocess.run(run + ["pack", str(data), str(pack), "--manifests", "cuts_train.jsonl.gz",
                          "cuts_dev.jsonl.gz"], check=True)
    cuts = [c for c in CutSet.from_file(data / "cuts_train.jsonl.gz") if not c.recording.transforms]
    originals = {c.recording.sources[0].source: c.load_audio()[0] for c in cuts}
    packed = sum(p.stat().st_size for p in (pack / "audio").rglob("*.opus"))
    assert packed < 0.5 * sum(Path(s).stat().st_size for s in originals)

    shutil.rmtree(data)
    out = subprocess.run(run + ["unpack", str(pack)], check=True, capture_output=True, text=True).stdout
    assert f"unpacked {len(list((pack / 'audio').rglob('*.opus')))} of" in out
    assert (data / "tokenizer" / "bpe.model").is_file() and (data / "cuts_train.jsonl.gz").is_file()
    for cut in CutSet.from_file(data / "cuts_train.jsonl.gz"):  # speed copies load through the same files
        assert cut.load_audio().shape[1] == cut.num_samples
    for source, x in originals.items():
        y, _ = sf.read(source, dtype="float32")
        assert len(y) == len(x)
        assert np.corrcoef(x, y)[0, 1] > 0.9  # lossy, but the same signal

    first = next(iter(originals))
    Path(first).write_bytes(b"keep me")
    out = subprocess.run(run + ["unpack", str(pack)], check=True, capture_output=True, text=True).stdout
    assert out.startswith("unpacked 0 of") and Path(first).read_bytes() == b"keep me"
