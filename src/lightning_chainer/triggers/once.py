"""Chainer's ``OnceTrigger``: the first iteration of training, and optionally the first after each resume."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lightning_chainer.step import Step


class OnceTrigger:
    """Fires at the first iteration it sees; with ``call_on_resume=True`` also at the first after a resume.

    Args:
        call_on_resume: Whether to fire again at the first iteration of a run resumed from a snapshot.

    Attributes:
        finished: True once the trigger will not fire again in this run.
    """

    def __init__(self, call_on_resume: bool = False) -> None:
        if not isinstance(call_on_resume, bool):
            raise TypeError(f"call_on_resume must be True or False, got {call_on_resume!r}.")
        self.call_on_resume = call_on_resume
        self._flag_first = True
        # Not saved, as in Chainer: a trigger built for a resumed run starts with it set again.
        self._flag_resumed = call_on_resume

    @property
    def finished(self) -> bool:
        return not (self._flag_first or self._flag_resumed)

    def __call__(self, step: Step) -> bool:
        fire = not self.finished
        self._flag_first = False
        self._flag_resumed = False
        return fire

    def state_dict(self) -> dict[str, Any]:
        return {"flag_first": self._flag_first}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "flag_first" in state:
            self._flag_first = bool(state["flag_first"])
            return
        # Chainer's guess for a snapshot without the flag: the trigger has fired already.
        warnings.warn(
            "OnceTrigger's state holds no flag: it is taken as having fired already, which is wrong only when the "
            "snapshot was taken before its first iteration.",
            stacklevel=2,
        )
        self._flag_first = False

    def __repr__(self) -> str:
        return f"OnceTrigger(call_on_resume={self.call_on_resume})"
