"""``python -m mnist_lightning``: the training command, or the command a first word names (``predict``, ``export``).

``python -m mnist_lightning --help`` lists the training flags, ``python -m mnist_lightning predict --help`` the
prediction command's. A command is one entry of :data:`COMMANDS`; its module is imported only when it runs.
"""

from __future__ import annotations

import importlib
import sys

#: First word -> the module whose ``main(argv)`` runs the command on the words after it.
COMMANDS = {
    "predict": "mnist_lightning.predict",
    "export": "mnist_lightning.export",
}


def main(argv: list[str] | None = None) -> int:
    """Run the command ``argv`` names (training unless its first word is a key of :data:`COMMANDS`).

    Args:
        argv: the arguments after ``python -m mnist_lightning`` (default: ``sys.argv[1:]``).
    """
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in COMMANDS:
        return importlib.import_module(COMMANDS[argv[0]]).main(argv[1:])
    from mnist_lightning.cli import main as train

    return train(argv)


if __name__ == "__main__":
    sys.exit(main())
