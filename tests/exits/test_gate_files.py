"""The exit gate's file and its inference without torch (asr_ee/exits/gate.py): JSON that gives the
same float32 arrays back; a legacy torch file (``.gate.pt``) still read where torch is, with a note,
and converted with the same probabilities (the shipped one included); and a process where importing
torch fails loads a gate and takes the same decisions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from asr_ee.config import ConfigError
from asr_ee.exits.criteria import ExitCriterion, ExitSelector
from asr_ee.exits.gate import (FEATURES, ExitGate, read_legacy_gate, convert_legacy_gate, find_gate, gate_path,
                               legacy_gate_path, load_gate)
from no_torch import BLOCK_TORCH

REPO = Path(__file__).resolve().parents[2]
# model A's gate of 2026-12-07 as the torch file it was written as and as scripts/convert_gate.py
# converted it (then exp/small/model.gate.pt and model.gate.json; kept here when the model moved on)
LEGACY = REPO / "tests" / "exits" / "data"


def _random_gate(seed: int = 0, exits: int = 4) -> ExitGate:
    rng = np.random.default_rng(seed)
    k, f = exits - 1, len(FEATURES)
    return ExitGate(list(range(1, exits + 1)), 0, rng.normal(size=(k, f)), rng.uniform(0.5, 2.0, (k, f)),
                    rng.normal(size=(k, f)), rng.normal(size=k), "abc123", "tokens@3",
                    {k: [(0.0, 0.3, 1.0), (0.5, 0.6, 2.0), (1.0, 1.0, 3.0)]}, {"chunks": 7})


def _features(n: int = 256, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, len(FEATURES))).astype(np.float32)


def _save_legacy(gate: ExitGate, path: Path) -> None:
    """The file as train-gate wrote it before gates were JSON: torch.save of tensors."""
    data = gate.to_dict()
    data.update({name: torch.from_numpy(getattr(gate, name)) for name in ("mean", "std", "weight", "bias")})
    data["calibration"] = {int(k): v for k, v in data["calibration"].items()}
    torch.save(data, path)


def _torch_probabilities(data: dict, k: int, features: np.ndarray) -> np.ndarray:
    """What the torch gate computed before (torch.sigmoid of the standardized features' logits)."""
    z = (torch.from_numpy(features) - data["mean"][k]) / data["std"][k]
    return torch.sigmoid(z @ data["weight"][k] + data["bias"][k]).numpy()


def test_json_gives_the_same_gate_back(tmp_path: Path) -> None:
    gate = _random_gate()
    gate.save(tmp_path / "model.gate.json")
    loaded = load_gate(tmp_path / "model.gate.json")
    for name in ("mean", "std", "weight", "bias"):
        assert getattr(loaded, name).dtype == np.float32
        np.testing.assert_array_equal(getattr(loaded, name), getattr(gate, name))
    assert loaded.calibration == gate.calibration and loaded.info == gate.info and loaded.label == gate.label
    assert loaded.threshold_for_budget(0.6) == 0.5
    assert json.loads((tmp_path / "model.gate.json").read_text())["fingerprint"] == "abc123"


def test_a_legacy_torch_gate_is_read_with_a_note_and_converts_exactly(tmp_path: Path, capsys) -> None:
    gate, features = _random_gate(seed=3), _features()
    model = tmp_path / "model.pt"
    legacy = legacy_gate_path(model)
    assert legacy == tmp_path / "model.gate.pt" and gate_path(model) == tmp_path / "model.gate.json"
    assert find_gate(model) == gate_path(model)  # neither exists: the JSON name (its error says train one)
    _save_legacy(gate, legacy)
    assert find_gate(model) == legacy
    old = load_gate(find_gate(model))
    assert "legacy torch gate file" in capsys.readouterr().err
    written = convert_legacy_gate(legacy)
    assert written == gate_path(model) and find_gate(model) == written  # the JSON wins once it exists
    new = load_gate(written)
    assert capsys.readouterr().err == ""
    for k in range(3):
        np.testing.assert_array_equal(new.probabilities(k, features), old.probabilities(k, features))
        torch_probs = _torch_probabilities(read_legacy_gate(legacy), k, features)
        np.testing.assert_allclose(new.probabilities(k, features), torch_probs, rtol=0, atol=1e-6)
    assert new.calibration == old.calibration and new.fingerprint == old.fingerprint


def test_a_trained_gate_converted_from_its_torch_file_is_the_same_gate() -> None:
    """A real trained gate (model A's of 2026-12-07) converted by scripts/convert_gate.py: the same
    arrays, so the same probabilities, as the torch file it came from."""
    legacy, new = read_legacy_gate(LEGACY / "legacy_gate.pt"), load_gate(LEGACY / "legacy_gate.json")
    old = ExitGate.from_dict(legacy)
    features = _features(1024)
    for k in range(len(new.exit_layers) - 1):
        np.testing.assert_array_equal(new.probabilities(k, features), old.probabilities(k, features))
        torch_probs = _torch_probabilities(legacy, k, features)
        np.testing.assert_allclose(new.probabilities(k, features), torch_probs, rtol=0, atol=1e-6)
    assert (new.fingerprint, new.label, new.exit_layers) == (legacy["fingerprint"], "tokens@10", [2, 4, 6, 8, 10, 12])
    assert new.calibration == old.calibration and new.threshold_for_budget(0.75, 4) == old.threshold_for_budget(0.75, 4)


# Loads a gate and decides on given posteriors in a process where torch cannot be imported.
_NO_TORCH = BLOCK_TORCH + r"""
import numpy as np
from asr_ee.config import ConfigError
from asr_ee.exits.criteria import ExitCriterion, ExitSelector
from asr_ee.exits.gate import load_gate

gate = load_gate(sys.argv[1])
log_probs, hidden = np.load(sys.argv[2]), np.load(sys.argv[3])
selector = ExitSelector(ExitCriterion("gate", float(sys.argv[4])), gate)
chosen = next((k for k in range(len(log_probs)) if selector.decide(k, log_probs[k], hidden[k])), len(log_probs) - 1)
try:
    load_gate(sys.argv[5])
    legacy = "read"
except ConfigError as e:
    legacy = str(e)
print(json.dumps({"values": selector.values, "chosen": chosen, "legacy": legacy,
                  "budget": gate.threshold_for_budget(0.6),
                  "torch": sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "lhotse"))}))
"""


def test_a_gate_loads_and_decides_without_torch(tmp_path: Path) -> None:
    gate, rng = _random_gate(seed=5), np.random.default_rng(7)
    gate.save(tmp_path / "model.gate.json")
    _save_legacy(gate, tmp_path / "old.gate.pt")
    log_probs = np.stack([np.log(rng.dirichlet(np.full(16, 0.3), size=6)).astype(np.float32) for _ in range(4)])
    hidden = rng.normal(size=(4, 6, 8)).astype(np.float32)  # (exits, frames, D)
    np.save(tmp_path / "lp.npy", log_probs)
    np.save(tmp_path / "h.npy", hidden)
    selector = ExitSelector(ExitCriterion("gate", 0.0), gate)
    for k in range(3):
        selector.decide(k, log_probs[k], hidden[k])
    threshold = float(np.median(selector.values))  # some exit below, some at or above
    run = subprocess.run([sys.executable, "-c", _NO_TORCH, str(tmp_path / "model.gate.json"), str(tmp_path / "lp.npy"),
                          str(tmp_path / "h.npy"), str(threshold), str(tmp_path / "old.gate.pt")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert got["torch"] == []
    want = ExitSelector(ExitCriterion("gate", threshold), gate)
    chosen = next((k for k in range(4) if want.decide(k, log_probs[k], hidden[k])), 3)
    assert got["values"] == want.values and got["chosen"] == chosen  # the same floats: numpy on both sides
    assert got["budget"] == gate.threshold_for_budget(0.6)
    assert "torch is not installed" in got["legacy"] and "scripts/convert_gate.py" in got["legacy"]


def test_a_gate_of_another_format_is_refused(tmp_path: Path) -> None:
    data = _random_gate().to_dict()
    data["features"] = data["features"][:-1]
    (tmp_path / "model.gate.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="another format"):
        load_gate(tmp_path / "model.gate.json")
