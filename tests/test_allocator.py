"""keep_freed_memory: after it, a training step takes (almost) no pages from the kernel (counted, not timed)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from mnist_lightning import allocator

# The "default" case fixes glibc's initial thresholds (128 KiB), which stops their self-adjustment: every block of
# 128 KiB or more is then mmapped and unmapped again, so each LeNet step faults its activations in anew, whatever
# the process did before (left to adjust itself, glibc lands in a better or a worse state depending on history).
STEPS = """
import ctypes, resource, sys
import torch
from mnist_lightning import allocator
from mnist_lightning.models import LeNet

torch.set_num_threads(1)
libc = ctypes.CDLL(None)
for parameter in (allocator.M_MMAP_THRESHOLD, allocator.M_TRIM_THRESHOLD):
    assert libc.mallopt(parameter, 128 * 1024) == 1
if sys.argv[1] == "keep":
    assert allocator.keep_freed_memory()
torch.manual_seed(0)
net = LeNet()
optimizer = torch.optim.Adam(net.parameters())
x, t = torch.rand(128, 1, 28, 28), torch.randint(0, 10, (128,))

def step():
    optimizer.zero_grad()
    torch.nn.functional.cross_entropy(net(x), t).backward()
    optimizer.step()

for _ in range(3):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    step()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20)
"""


def faults_per_step(mode: str) -> float:
    env = {k: v for k, v in os.environ.items() if k not in allocator.USER_SETTINGS}
    done = subprocess.run(
        [sys.executable, "-c", STEPS, mode], env=env, capture_output=True, text=True, timeout=300, check=True
    )
    return float(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc settings exist on Linux only")
def test_a_training_step_faults_almost_no_pages_in_once_freed_memory_is_kept() -> None:
    default, kept = faults_per_step("default"), faults_per_step("keep")
    assert default > 500  # ~5,800 here: each step maps its activations afresh
    assert kept < default / 20  # 0 on a quiet machine; a few dozen under memory pressure (code pages re-read)


def test_a_users_own_malloc_settings_stand(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in allocator.USER_SETTINGS:
        with monkeypatch.context() as env:
            env.setenv(name, "1")
            assert allocator.keep_freed_memory() is False
