"""Which Lightning callback hooks an extension implements itself, and calling them for the ExtensionsManager.

Under an :class:`~lightning_chainer.manager.ExtensionsManager`, Lightning calls each hook once, on the manager;
the manager passes it on to the extensions that implement it. An extension implements a hook when the attribute
is callable and is neither Callback's empty hook nor the leading logic of the Extension base class (which the
manager does itself), so ``on_before_backward = None`` (as the base class sets the per-batch hooks) means no.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from lightning.pytorch.callbacks import Callback

from lightning_chainer.extension import Extension

#: Every hook Lightning calls on a callback with the trainer and the module first (``setup`` ... ``teardown``).
CALLBACK_HOOKS = tuple(
    sorted(
        name
        for name, value in vars(Callback).items()
        if callable(value) and (name.startswith("on_") or name in ("setup", "teardown"))
    )
)


def implements(obj: Any, hook: str) -> bool:
    """Whether ``obj`` has a ``hook`` of its own for Lightning to call.

    Args:
        obj: an extension (or any object).
        hook: a name in :data:`CALLBACK_HOOKS`.
    """
    bound = getattr(obj, hook, None)
    if not callable(bound):
        return False
    function = getattr(bound, "__func__", bound)
    return function is not vars(Callback).get(hook) and function is not vars(Extension).get(hook)


class Forwarding:
    """For each hook, the extensions (in registration order) that implement it; calls them with Lightning's arguments.

    Args:
        extensions: the extensions a manager runs.
    """

    def __init__(self, extensions: Iterable[Any]) -> None:
        extensions = list(extensions)
        self.by_hook: dict[str, list[Any]] = {
            hook: [e for e in extensions if implements(e, hook)] for hook in CALLBACK_HOOKS
        }

    def call(self, hook: str, *args: Any, **kwargs: Any) -> None:
        """Call ``hook`` on each extension that still has it (one may switch its hook off by setting it to None).

        Args:
            hook: the hook's name.
            *args: Lightning's arguments (the trainer, the module, then the hook's own).
            **kwargs: Lightning's keyword arguments (``stage=`` of ``setup`` and ``teardown``).
        """
        for ext in self.by_hook[hook]:
            function = getattr(ext, hook)
            if callable(function):
                function(*args, **kwargs)

    def forwarder(self, hook: str, owner: Any) -> Callable[..., None] | None:
        """A hook for ``owner`` (the manager) that calls ``hook`` on the extensions; None when none implements it.

        When every extension has switched the hook off, the forwarder removes itself from ``owner``, so that
        Lightning, which skips an attribute that is not callable, stops calling it.

        Args:
            hook: the hook's name.
            owner: the object whose instance attribute the forwarder becomes.
        """
        extensions = self.by_hook[hook]
        if not extensions:
            return None

        def forward(*args: Any, **kwargs: Any) -> None:
            called = False
            for ext in extensions:
                function = getattr(ext, hook)
                if callable(function):
                    function(*args, **kwargs)
                    called = True
            if not called:
                setattr(owner, hook, None)

        return forward
