"""Do the exits put their CTC spikes on the same frames as the last exit? See
:mod:`asr_ee.evaluation.exit_timing`.

    python scripts/exit_timing.py MODEL CUTS [--limit 100] [--chunk-frames 8] [--left-context-chunks 4]
"""

from asr_ee.evaluation.exit_timing import main

if __name__ == "__main__":
    raise SystemExit(main())
