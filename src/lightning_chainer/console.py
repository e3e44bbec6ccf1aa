"""A console for Chainer's PrintReport table: Lightning's informational chatter off, its warnings kept.

Lightning prints its start-up banners ("GPU available: ...", "TPU available: ...", "LOCAL_RANK: ..."), a tip
(the "litlogger" one), the model summary, "`weights_only` was not set" whenever a checkpoint is built through
``Trainer.save_checkpoint``, and "`Trainer.fit` stopped" through its loggers at INFO level, on stderr, in the
middle of a table printed on stdout. :func:`quiet_console` raises those loggers to WARNING, and filters one
warning Lightning raises about its own use of a deprecated torch API. Every other warning, Lightning's and
yours, still shows.
"""

from __future__ import annotations

import logging
import warnings

#: The loggers of Lightning's packages (the unified ``lightning`` one and the standalone ones).
LIGHTNING_LOGGERS = ("lightning.pytorch", "lightning.fabric", "pytorch_lightning", "lightning_fabric")
#: Lightning's own use of torch's deprecated ``LeafSpec`` (Lightning 2.6 on torch 2.14), on every run.
LIGHTNING_TORCH_DEPRECATION = r".*isinstance\(treespec, LeafSpec\).*"


def quiet_console() -> None:
    """Keep Lightning's informational lines off the console for the rest of the process; warnings still show.

    Call it once, at the start of a script, before the ``lightning.Trainer`` is built (the banners come from
    its constructor).
    """
    for name in LIGHTNING_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=LIGHTNING_TORCH_DEPRECATION)
