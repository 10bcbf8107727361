"""Pack a prepared corpus's audio small enough to travel to a remote training machine, and unpack it there.

``pack``: every recording that the given cut manifests reference is encoded to Ogg/Opus (about 20 kbit/s
at the default level: 4.9 h of the offline TTS corpus fit in ~45 MB); the manifests and the tokenizer
are copied beside it. ``unpack``: decodes each file back to the recording's original path, as FLAC,
padded or trimmed to the manifest's sample count, so the copied manifests work unchanged with
``data.on_the_fly_features: true``. Opus is lossy: the unpacked audio is close to, not equal to, the
original (mean |diff| of loud fbank bins ~0.35 at level 0.95), so fine-tune on the originals after.

    python scripts/pack_corpus_audio.py pack DATA_DIR PACK_DIR --manifests cuts_train.jsonl.gz cuts_dev.jsonl.gz
    python scripts/pack_corpus_audio.py unpack PACK_DIR [--jobs 16]
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import shutil
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf


def _recordings(manifest: Path) -> dict[str, tuple[int, int]]:
    """Source path -> (sampling_rate, num_samples) of each file recording a cut manifest references."""
    out = {}
    with gzip.open(manifest, "rt") as f:
        for line in f:
            rec = json.loads(line)["recording"]
            if rec.get("transforms"):  # speed copies share their source with the plain cut
                continue
            for src in rec["sources"]:
                if src["type"] != "file":
                    raise SystemExit(f"{manifest}: only file sources can be packed, got {src['type']}")
                out[src["source"]] = (rec["sampling_rate"], rec["num_samples"])
    return out


def _encode(job) -> int:
    src, dst, level = job
    x, sr = sf.read(src, dtype="float32")
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    sf.write(dst, x, sr, format="OGG", subtype="OPUS", compression_level=level)
    return Path(dst).stat().st_size


def _decode(job) -> bool:
    src, dst, num_samples = job
    if Path(dst).exists():  # never overwrite an original recording
        return False
    x, sr = sf.read(src, dtype="float32")
    x = x[:num_samples] if len(x) >= num_samples else np.pad(x, (0, num_samples - len(x)))
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    sf.write(buf, x, sr, format="FLAC")
    Path(dst).write_bytes(buf.getvalue())
    return True


def pack(data_dir: Path, pack_dir: Path, manifests: list[str], extra: list[str], level: float, jobs: int) -> None:
    data_dir, pack_dir = data_dir.resolve(), pack_dir.resolve()
    pack_dir.mkdir(parents=True, exist_ok=True)
    index, work = {}, []
    for name in manifests:
        for src, (sr, n) in _recordings(data_dir / name).items():
            rel = Path(src).resolve().relative_to(data_dir)
            index[str(rel)] = {"source": src, "num_samples": n}
            work.append((src, str(pack_dir / "audio" / rel.with_suffix(".opus")), level))
        shutil.copy(data_dir / name, pack_dir / name)
    for name in extra:
        dst = pack_dir / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(data_dir / name, dst)
    with ProcessPoolExecutor(jobs) as ex:
        total = sum(ex.map(_encode, work, chunksize=64))
    (pack_dir / "index.json").write_text(json.dumps({"data_dir": str(data_dir), "files": index}))
    print(f"packed {len(work)} recordings into {pack_dir} ({total / 1e6:.1f} MB of audio)")


def unpack(pack_dir: Path, jobs: int) -> None:
    pack_dir = pack_dir.resolve()
    meta = json.loads((pack_dir / "index.json").read_text())
    data_dir = Path(meta["data_dir"])
    work = [(str(pack_dir / "audio" / Path(rel).with_suffix(".opus")), f["source"], f["num_samples"])
            for rel, f in meta["files"].items()]
    with ProcessPoolExecutor(jobs) as ex:
        written = sum(ex.map(_decode, work, chunksize=64))
    for p in pack_dir.rglob("*"):
        rel = p.relative_to(pack_dir)
        if p.is_file() and rel.parts[0] != "audio" and p.name != "index.json" and not (data_dir / rel).exists():
            (data_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(p, data_dir / rel)
    print(f"unpacked {written} of {len(work)} recordings into {data_dir} (existing files are kept)")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("pack")
    a.add_argument("data_dir", type=Path)
    a.add_argument("pack_dir", type=Path)
    a.add_argument("--manifests", nargs="+", required=True, help="cut manifests (relative to data_dir)")
    a.add_argument("--extra", nargs="*", default=["tokenizer/bpe.model"], help="files copied as they are")
    a.add_argument("--level", type=float, default=0.95, help="Opus compression level (1.0: smallest)")
    a.add_argument("--jobs", type=int, default=2)
    b = sub.add_parser("unpack")
    b.add_argument("pack_dir", type=Path)
    b.add_argument("--jobs", type=int, default=2)
    args = p.parse_args(argv)
    if args.cmd == "pack":
        pack(args.data_dir, args.pack_dir, args.manifests, args.extra, args.level, args.jobs)
    else:
        unpack(args.pack_dir, args.jobs)


if __name__ == "__main__":
    sys.exit(main())
