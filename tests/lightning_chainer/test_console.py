"""quiet_console(): Lightning's banners, tips and checkpoint notes leave the console; warnings, yours too, stay."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

#: One process: a tiny run printing Chainer's table, then quiet_console(), then the same run again.
PROGRAM = r"""
import sys, warnings
import lightning as L, torch
from torch.utils.data import DataLoader, TensorDataset
import lightning_chainer
from lightning_chainer import extensions as E


class Module(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(1, 1)

    def training_step(self, batch, batch_idx):
        if self.global_step == 0:
            warnings.warn("a warning of the user's own")
        loss = self.layer(batch[0]).pow(2).mean()
        self.log("main/loss", loss.detach(), on_step=True)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class SaveCheckpoint(E.Extension):  # a snapshot of one's own: Trainer.save_checkpoint notes `weights_only`

    def __init__(self, path):
        super().__init__(trigger=(1, "epoch"))
        self.path = path

    def __call__(self, step):
        step.trainer.save_checkpoint(self.path)


def run(out):
    extensions = [E.LogReport(out=out), E.PrintReport(["epoch", "main/loss"]), E.snapshot(out=out)]
    extensions.append(SaveCheckpoint(out + "/own.ckpt"))
    trainer = L.Trainer(max_epochs=2, callbacks=extensions, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu")
    trainer.fit(Module(), DataLoader(TensorDataset(torch.ones(8, 1)), batch_size=4))


def phase(name):
    for stream in (sys.stdout, sys.stderr):
        print(f"=== {name}", file=stream, flush=True)


phase("without")
run(sys.argv[1] + "/without")
lightning_chainer.quiet_console()
phase("with")
run(sys.argv[1] + "/with")
"""

CHATTER = (
    "GPU available",
    "TPU available",
    "litlogger",
    "`weights_only` was not set",
    "isinstance(treespec, LeafSpec)",
)


def test_quiet_console_keeps_lightnings_chatter_out_and_every_warning_in(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM, str(tmp_path)], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    out_without, out_with = result.stdout.split("=== with\n")
    err_without, err_with = result.stderr.split("=== with\n")
    for chatter in CHATTER:
        assert chatter in err_without, chatter
        assert chatter not in err_with, chatter
    for err in (err_without, err_with):
        assert "UserWarning: a warning of the user's own" in err
    for out in (out_without, out_with):
        assert "epoch       main/loss" in out and "\x1b[J2  " in out  # the table, whole, on stdout
