"""Fine-tuning Whisper on a user's recordings with L = alpha * L_recon + (1 - alpha) * L_reg.

    from export.train import TrainOptions, train
    report = train("whisper-base", Path("my-clips"), Path("packs/whisper-tuned-int8"), TrainOptions(alpha=0.9))

Modules: ``options`` (TrainOptions), ``data`` (folder → examples, bad files reported), ``loss`` (the
objective), ``loop`` (steps, checkpoints, resume), ``evaluate`` (greedy decoding, WER), ``base`` (the
starting checkpoint and the exported pack), ``run`` (one run end to end), ``cli``. The text encoder of
the shared space is ``export.text_encoder``. See docs/training.md.
"""

from export.train.options import TrainOptions
from export.train.run import TrainReport, train

__all__ = ["TrainOptions", "TrainReport", "train"]
