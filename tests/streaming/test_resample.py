"""The numpy resampler (asr_ee.streaming.resample) resamples as torchaudio.functional.resample,
whole or streamed in pieces, and a file at another rate is read as the torch path read it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from asr_ee.streaming.resample import StreamingResampler, resample


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_resample_equals_torchaudio(rate: int) -> None:
    import torchaudio

    x = np.random.default_rng(rate).standard_normal(rate // 2 + 13).astype(np.float32) * 0.3
    want = torchaudio.functional.resample(torch.from_numpy(x), rate, 16000).numpy()
    got = resample(x, rate, 16000)
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
    resampler = StreamingResampler(rate, 16000)
    pieces = [resampler.accept(x[i:i + 777]) for i in range(0, x.size, 777)] + [resampler.finish()]
    np.testing.assert_allclose(np.concatenate(pieces), got, atol=1e-6, rtol=0)


def test_read_audio_resamples_to_16k(tmp_path) -> None:
    import soundfile as sf

    from asr_ee.audio import load_audio, read_audio

    x = (0.3 * np.sin(np.arange(22050) * 2 * np.pi * 440 / 22050)).astype(np.float32)
    sf.write(tmp_path / "a.wav", np.stack([x, x], axis=1), 22050, subtype="FLOAT")
    samples = read_audio(tmp_path / "a.wav")
    assert isinstance(samples, np.ndarray) and samples.shape == (16000,)
    np.testing.assert_allclose(samples, resample(x, 22050, 16000), atol=1e-6)
    assert torch.equal(load_audio(tmp_path / "a.wav"), torch.from_numpy(samples))
