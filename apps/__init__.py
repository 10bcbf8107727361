"""End-user programs built on ``asr_ee``. Not part of the installed package: they run from a clone
of the repository (``python apps/<name>.py``, or through ``asr-ee <name>``, which loads them from
here). The library never imports this package."""
