"""The Markdown pages hold: every relative link resolves, every documented command exists, the guides agree.

The pages are README.md, README.ja.md and every docs/*.md and docs/ja/*.md. A command is a line of a ``bash``,
``sh`` or ``shell`` block (or a ``$ `` line of a ``console`` or untagged block) that runs ``python scripts/X.py``,
``python examples/X.py``, ``python -m mnist_lightning``, ``make``, ``tensorboard`` or a ``mnist-lightning-*``
console script (also behind ``torchrun`` or ``srun``). Each program such a command names runs once with
``--help``, and every flag the pages give it must appear in that help.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
REQUIRED = ("README.md", "README.ja.md", "docs/porting.md", "docs/ja/porting.md")
GUIDES = ("docs/porting.md", "docs/ja/porting.md")
SHELL_LANGS = {"bash", "sh", "shell"}
PROMPT_LANGS = {"console", "", "text"}
PYTHON = re.compile(r"^(?:\S*/)?python(?:3(?:\.\d+)?)?$")
SCRIPT = re.compile(r"^(?:\./)?((?:scripts|examples)/[\w-]+\.py)$")
FLAG = re.compile(r"^(--?[A-Za-z][\w-]*)(?:=.*)?$")
LAUNCHERS = {"torchrun", "srun", "mpirun"}
OPERATORS = {"&&", "||", ";", "|", "&"}
REDIRECTS = {">", ">>", "<", "2>", "&>"}
HELP_TIMEOUT = 240


def pages() -> list[Path]:
    """README.md, README.ja.md and every page under docs/ and docs/ja/ that exists."""
    found = {ROOT / name for name in ("README.md", "README.ja.md")}
    found.update((ROOT / "docs").glob("*.md"))
    found.update((ROOT / "docs" / "ja").glob("*.md"))
    return sorted(path for path in found if path.is_file())


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


@dataclass(frozen=True)
class Block:
    """A fenced code block: its info string's first word, its lines, and the page line it starts on."""

    lang: str
    lines: tuple[str, ...]
    start: int


@dataclass(frozen=True)
class Page:
    """A page split into its prose lines (outside fences, with their line numbers) and its fenced blocks."""

    path: Path
    prose: tuple[tuple[int, str], ...]
    blocks: tuple[Block, ...]


@cache
def parse(path: Path) -> Page:
    prose: list[tuple[int, str]] = []
    blocks: list[Block] = []
    fence: str | None = None
    lang, body, start = "", [], 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        stripped = line.lstrip()
        if fence is None:
            opening = re.match(r"(`{3,}|~{3,})\s*([^\s`]*)", stripped)
            if opening:
                fence, lang, body, start = opening.group(1), opening.group(2).lower(), [], number
            else:
                prose.append((number, line))
        elif stripped.startswith(fence) and not stripped[len(fence) :].strip():
            blocks.append(Block(lang, tuple(body), start))
            fence = None
        else:
            body.append(line)
    assert fence is None, f"{rel(path)}: the code block opened on line {start} is never closed"
    return Page(path, tuple(prose), tuple(blocks))


# --- headings and GitHub's anchors ------------------------------------------------------------------------------------


def headings(path: Path) -> list[tuple[int, str]]:
    """The ATX headings of a page outside code blocks: (level, text)."""
    found = []
    for _, line in parse(path).prose:
        match = re.match(r"^ {0,3}(#{1,6})\s+(.*?)(?:\s+#+)?\s*$", line)
        if match:
            found.append((len(match.group(1)), match.group(2)))
    return found


def slug(text: str) -> str:
    """GitHub's anchor of a heading: its text lowercased, punctuation and symbols dropped, spaces as hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link keeps its text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "")
    text = re.sub(r"\*+|(?<!\w)_+|_+(?!\w)", "", text)  # emphasis markers, not the underscores inside words
    kept = []
    for char in text.lower():
        category = unicodedata.category(char)
        if char in " -" or category[0] in "LMN" or category == "Pc":
            kept.append("-" if char == " " else char)
    return "".join(kept)


@cache
def anchors(path: Path) -> frozenset[str]:
    """Every anchor GitHub gives the headings of ``path``, repeated slugs numbered ``-1``, ``-2``, ..."""
    seen: dict[str, int] = {}
    found = set()
    for _, text in headings(path):
        base = slug(text)
        count = seen.get(base, 0)
        found.add(base if count == 0 else f"{base}-{count}")
        seen[base] = count + 1
    return frozenset(found)


def test_slug_follows_githubs_rules() -> None:
    assert slug("Lightning next to Chainer: `compare.py`") == "lightning-next-to-chainer-comparepy"
    assert slug("Chainer → here") == "chainer--here"
    assert slug("The reference script: `scripts/train_chainer.py`") == "the-reference-script-scriptstrain_chainerpy"
    assert slug("**Bold** and [a link](x.md)") == "bold-and-a-link"
    assert slug("再開（レジューム）と `-r`") == "再開レジュームと--r"


# --- links ------------------------------------------------------------------------------------------------------------


def links(page: Page) -> Iterator[tuple[int, str]]:
    """(line, target) of every inline link, image and reference definition in the prose."""
    for number, line in page.prose:
        line = re.sub(r"(`+).*?\1", "", line)  # inline code is no link
        for match in re.finditer(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)", line):
            yield number, match.group(1)
        definition = re.match(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", line)
        if definition:
            yield number, definition.group(1)


def link_problem(page: Path, target: str) -> str | None:
    """Why ``target``, a link on ``page``, does not resolve (None when it does, or when it leaves the repository)."""
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", target) or target.startswith("//"):
        return None  # a URL: not this test's business
    path_part, _, anchor = target.partition("#")
    resolved = (page.parent / unquote(path_part)).resolve() if path_part else page
    if ROOT not in (resolved, *resolved.parents):
        return f"{target} points outside the repository"
    if not resolved.exists():
        return f"{target}: {rel(resolved) if ROOT in resolved.parents else resolved} does not exist"
    if anchor:
        if resolved.suffix == ".md":
            if unquote(anchor) not in anchors(resolved):
                return f"{target}: {rel(resolved)} has no heading whose anchor is #{anchor}"
        elif not re.fullmatch(r"L\d+(?:-L\d+)?", anchor):
            return f"{target}: #{anchor} is no line anchor of {rel(resolved)}"
    return None


@pytest.mark.parametrize("name", REQUIRED)
def test_required_page_exists(name: str) -> None:
    assert (ROOT / name).is_file(), f"{name} is missing"


def test_readmes_link_each_other_and_the_guide() -> None:
    english = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert any("(README.ja.md)" in line for line in english[:5]), "README.md's first lines link README.ja.md"
    assert any("(docs/porting.md)" in line for line in english), "README.md links docs/porting.md"
    japanese = (ROOT / "README.ja.md").read_text(encoding="utf-8").splitlines()
    assert any("(README.md)" in line for line in japanese[:5]), "README.ja.md's first lines link README.md"
    assert any("(docs/ja/porting.md)" in line for line in japanese), "README.ja.md links docs/ja/porting.md"


@pytest.mark.parametrize("path", pages(), ids=rel)
def test_relative_links_resolve(path: Path) -> None:
    page = parse(path)
    problems = [f"line {n}: {why}" for n, target in links(page) if (why := link_problem(path, target))]
    assert not problems, f"{rel(path)}:\n" + "\n".join(problems)


def test_link_check_catches_a_missing_file_and_a_missing_anchor() -> None:
    readme = ROOT / "README.md"
    assert link_problem(readme, "docs/porting.md") is None
    assert link_problem(readme, "https://example.com/nowhere") is None
    assert "does not exist" in link_problem(readme, "docs/no-such-page.md")
    assert "no heading" in link_problem(readme, "docs/porting.md#no-such-section")


# --- the Makefile -----------------------------------------------------------------------------------------------------


@cache
def makefile() -> tuple[frozenset[str], frozenset[str], dict[str, str]]:
    """The Makefile's targets, its variables, and for each target the script its recipe hands ``$(ARGS)`` to."""
    targets, variables, recipes = set(), set(), {}
    current: list[str] = []
    for line in (ROOT / "Makefile").read_text(encoding="utf-8").splitlines():
        if line.startswith("\t"):
            script = re.search(r"((?:scripts|examples)/[\w-]+\.py)\b.*\$\(ARGS\)", line)
            for target in current:
                if script:
                    recipes[target] = script.group(1)
            continue
        current = []
        assignment = re.match(r"^([A-Za-z_][\w]*)\s*(?:\?|:|\+)?=", line)
        if assignment:
            variables.add(assignment.group(1))
            continue
        rule = re.match(r"^([^\s:=#][^:=#]*):(?!=)", line)
        if rule:
            current = [t for t in rule.group(1).split() if not t.startswith(".") and "$" not in t]
            targets.update(current)
    return frozenset(targets), frozenset(variables), recipes


# --- commands ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    """One documented command: its page and line, its text, the program it runs and the arguments it gives it."""

    page: Path
    line: int
    text: str
    program: tuple[str, ...] | None  # None: a recognised command whose program does not exist
    args: tuple[str, ...]
    why: str = ""


def shell_lines(block: Block) -> Iterator[tuple[int, str]]:
    """(offset, command) of a block: continuation lines joined; in a console block, only ``$ `` lines."""
    prompt_only = block.lang in PROMPT_LANGS
    pending, first = "", 0
    for offset, raw in enumerate(block.lines, 1):
        line = raw.strip()
        if not pending:
            first = offset
            if line.startswith("$ "):
                line = line[2:]
            elif prompt_only:
                continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        yield first, pending + line
        pending = ""
    if pending:
        yield first, pending


def split_words(text: str) -> list[list[str]]:
    """The simple commands of a shell line: words split as a shell does, at ``&&``, ``|``, ``;``, comments gone."""
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        words = list(lexer)
    except ValueError:
        return [text.split()]
    commands: list[list[str]] = [[]]
    skip = False
    for word in words:
        if skip:
            skip = False
        elif word in OPERATORS:
            commands.append([])
        elif word in REDIRECTS:
            skip = True
        else:
            commands[-1].append(word)
    return [words for words in commands if words]


@cache
def console_scripts() -> dict[str, str]:
    """The project's console scripts, read from pyproject.toml's ``[project.scripts]``: name -> ``module:function``."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    table = re.search(r"^\[project\.scripts\]\n(.*?)(?=^\[|\Z)", text, re.M | re.S)
    assert table is not None, "pyproject.toml has no [project.scripts]"
    return dict(re.findall(r'^"?([\w.-]+)"?\s*=\s*"([^"]+)"', table.group(1), re.M))


@cache
def module_commands() -> frozenset[str]:
    """The first words ``python -m mnist_lightning`` takes as a command (its ``COMMANDS``)."""
    from mnist_lightning.__main__ import COMMANDS

    return frozenset(COMMANDS)


def recognise(words: list[str]) -> tuple[tuple[str, ...] | None, tuple[str, ...], str] | None:
    """(program, args, why) of a simple command this test checks; None for any other command."""
    while words and re.match(r"^[A-Za-z_]\w*=", words[0]):
        words = words[1:]  # VAR=value before the command
    if not words:
        return None
    head = words[0]
    if head in LAUNCHERS:
        for i, word in enumerate(words):
            if SCRIPT.match(word):
                return recognise_script(word, words[i + 1 :])
        return None
    if PYTHON.match(head) and len(words) > 1:
        if words[1] == "-m" and len(words) > 2 and words[2] == "mnist_lightning":
            rest = words[3:]
            if rest and rest[0] in module_commands():
                return ("-m", "mnist_lightning", rest[0]), tuple(rest[1:]), ""
            return ("-m", "mnist_lightning"), tuple(rest), ""
        if SCRIPT.match(words[1]) or re.match(r"^(?:\./)?(?:scripts|examples)/", words[1]):
            return recognise_script(words[1], words[2:])
        return None
    if head == "make":
        return ("make",), tuple(words[1:]), ""
    if head == "tensorboard":
        return ("tensorboard",), tuple(words[1:]), ""
    if head.startswith("mnist-lightning-"):
        if head not in console_scripts():
            return None, tuple(words[1:]), f"{head} is not a console script of pyproject.toml"
        return (head,), tuple(words[1:]), ""
    return None


def recognise_script(word: str, args: list[str]) -> tuple[tuple[str, ...] | None, tuple[str, ...], str]:
    match = SCRIPT.match(word)
    if match is None or not (ROOT / match.group(1)).is_file():
        return None, tuple(args), f"{word} does not exist"
    return (match.group(1),), tuple(args), ""


@cache
def commands(path: Path) -> tuple[Command, ...]:
    found = []
    for block in parse(path).blocks:
        if block.lang not in SHELL_LANGS | PROMPT_LANGS:
            continue
        for offset, text in shell_lines(block):
            for words in split_words(text):
                recognised = recognise(words)
                if recognised is not None:
                    program, args, why = recognised
                    found.append(Command(path, block.start + offset, text, program, args, why))
    return tuple(found)


def all_commands() -> list[Command]:
    return [command for path in pages() for command in commands(path)]


def make_args_script(command: Command) -> tuple[str, str] | None:
    """(ARGS, the script the target's recipe hands them to) of a ``make TARGET ARGS="..."`` command, if any."""
    assignments = dict(arg.split("=", 1) for arg in command.args if "=" in arg and not arg.startswith("-"))
    recipes = makefile()[2]
    for target in (arg for arg in command.args if "=" not in arg and not arg.startswith("-")):
        if "ARGS" in assignments and target in recipes:
            return assignments["ARGS"], recipes[target]
    return None


def programs() -> list[tuple[str, ...]]:
    """Every program a page runs, once: make's targets are read from the Makefile, and its ARGS go to a script."""
    found = set()
    for command in all_commands():
        if command.program == ("make",):
            handed = make_args_script(command)
            if handed is not None:
                found.add((handed[1],))
        elif command.program is not None:
            found.add(command.program)
    return sorted(found)


def help_argv(program: tuple[str, ...]) -> list[str]:
    """How to run ``program --help`` with this interpreter."""
    if program[0] == "-m" or program[0].endswith(".py"):
        return [sys.executable, *program, "--help"]
    if program == ("tensorboard",):
        (entry,) = entry_points(group="console_scripts", name="tensorboard")
        target = entry.value
    else:
        target = console_scripts()[program[0]]
    module, _, function = target.partition(":")
    code = f"import sys; from {module} import {function} as main; sys.argv[0] = {program[0]!r}; sys.exit(main())"
    return [sys.executable, "-c", code, "--help"]


@cache
def helps() -> dict[tuple[str, ...], subprocess.CompletedProcess[str]]:
    """``--help`` of every documented program, run side by side once for the whole module."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "COLUMNS": "200"}
    started = {
        program: subprocess.Popen(
            help_argv(program), cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for program in programs()
    }
    done = {}
    for program, process in started.items():
        try:
            stdout, stderr = process.communicate(timeout=HELP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
        done[program] = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    return done


def name(program: tuple[str, ...]) -> str:
    return " ".join(program)


def test_every_command_is_recognised() -> None:
    problems = [f"{rel(c.page)}:{c.line}: {c.why} ({c.text})" for c in all_commands() if c.program is None]
    assert not problems, "\n".join(problems)
    documented = {name(p) for p in programs()}
    for expected in ("scripts/train.py", "scripts/predict.py", "scripts/export.py", "tensorboard"):
        assert expected in documented, f"no page runs {expected}: the command parsing is broken"


def test_command_parsing_reads_the_shell() -> None:
    assert split_words("CI=1 python scripts/train.py -e 2 | tee t.txt  # a comment") == [
        ["CI=1", "python", "scripts/train.py", "-e", "2"],
        ["tee", "t.txt"],
    ]
    assert recognise(["python", "-m", "mnist_lightning", "predict", "SNAPSHOT"]) == (
        ("-m", "mnist_lightning", "predict"),
        ("SNAPSHOT",),
        "",
    )
    assert recognise(["torchrun", "--nnodes", "2", "scripts/train.py", "--devices", "1"])[:2] == (
        ("scripts/train.py",),
        ("--devices", "1"),
    )
    assert recognise(["python", "scripts/no_such_script.py"])[0] is None
    assert recognise(["mnist-lightning-nothing"])[0] is None
    assert recognise(["pip", "install", "-e", "."]) is None


def flags(args: tuple[str, ...]) -> list[str]:
    """The flags among a command's arguments (``--lr``, ``-e``; ``--out=DIR`` as ``--out``; ``-1`` is a value)."""
    return [match.group(1) for arg in args if (match := FLAG.match(arg))]


def in_help(flag: str, text: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text) is not None


def flag_problems(command: Command, results: dict[tuple[str, ...], subprocess.CompletedProcess[str]]) -> list[str]:
    """The flags of ``command`` its program's --help does not name (for make, the flags in ARGS of its script)."""
    if command.program is None:
        return []
    if command.program == ("make",):
        handed = make_args_script(command)
        if handed is None:
            return []
        args, script = handed
        return [
            f"{script} (given by make's ARGS) has no {flag}"
            for flag in flags(tuple(shlex.split(args)))
            if not in_help(flag, results[(script,)].stdout)
        ]
    text = results[command.program].stdout
    return [f"{name(command.program)} has no {flag}" for flag in flags(command.args) if not in_help(flag, text)]


def test_documented_programs_run_with_help_and_have_the_documented_flags() -> None:
    # One test for every program, so that a parallel run (make test: pytest -n) starts each --help once.
    results = helps()
    problems = [
        f"{name(program)} --help exited {result.returncode}: {result.stderr.strip()[-1000:]}"
        for program, result in results.items()
        if result.returncode != 0 or "usage" not in result.stdout.lower()
    ]
    for command in all_commands():
        problems += [
            f"{rel(command.page)}:{command.line}: {why} ({command.text})" for why in flag_problems(command, results)
        ]
    assert len(results) >= 4, f"only {len(results)} documented programs found"
    assert not problems, "\n".join(problems)


def test_flag_check_catches_a_flag_that_does_not_exist() -> None:
    text = "  --epoch EPOCH, -e EPOCH\n  --data-on-device, --no-data-on-device\n"
    assert flags(("-e", "2", "--out=result", "-d", "-1", "value")) == ["-e", "--out", "-d"]
    assert in_help("-e", text) and in_help("--no-data-on-device", text)
    assert not in_help("--epochs", text) and not in_help("--data", text) and not in_help("-d", text)
    train = subprocess.CompletedProcess([], 0, text, "")
    command = Command(ROOT, 0, "python scripts/train.py --epochs 3", ("scripts/train.py",), ("--epochs", "3"))
    assert flag_problems(command, {("scripts/train.py",): train}) == ["scripts/train.py has no --epochs"]
    make = Command(ROOT, 0, "make train ARGS=...", ("make",), ("train", "ARGS=-e 2 --epochs 3"))
    assert flag_problems(make, {("scripts/train.py",): train}) == [
        "scripts/train.py (given by make's ARGS) has no --epochs"
    ]


# --- make targets -----------------------------------------------------------------------------------------------------


def make_problems(command: Command) -> list[str]:
    """The targets and variables of a make command that the Makefile lacks."""
    targets, variables, _ = makefile()
    wanted = [arg for arg in command.args if "=" not in arg and not arg.startswith("-")]
    assigned = [arg.split("=", 1)[0] for arg in command.args if "=" in arg and not arg.startswith("-")]
    problems = [f"the Makefile has no target {target!r}" for target in wanted if target not in targets]
    problems += [f"the Makefile has no variable {variable}" for variable in assigned if variable not in variables]
    return problems


@pytest.mark.parametrize("path", pages(), ids=rel)
def test_make_targets_exist(path: Path) -> None:
    problems = [
        f"line {c.line}: {why} ({c.text})" for c in commands(path) if c.program == ("make",) for why in make_problems(c)
    ]
    assert not problems, f"{rel(path)}:\n" + "\n".join(problems)


def test_makefile_parsing_finds_the_set_up_targets() -> None:
    targets, variables, recipes = makefile()
    assert {"train", "test", "install"} <= targets
    assert {"ARGS", "DATA_DIR", "PYTHON"} <= variables
    assert recipes.get("train") == "scripts/train.py"
    assert make_problems(Command(ROOT, 0, "make trian", ("make",), ("trian",))) == [
        "the Makefile has no target 'trian'"
    ]


# --- the two porting guides -------------------------------------------------------------------------------------------


def sections(path: Path) -> list[str]:
    return [text for level, text in headings(path) if level == 2]


def table_rows(path: Path) -> list[int]:
    """The number of body rows of each table, in page order."""
    counts: list[int] = []
    previous = -2
    for number, line in parse(path).prose:
        if not line.lstrip().startswith("|"):
            continue
        if number != previous + 1:
            counts.append(0)  # a new table: its header row
        elif not re.fullmatch(r"\s*\|[\s:|-]*\|?\s*", line):
            counts[-1] += 1
        previous = number
    return counts


def command_words(path: Path) -> list[tuple[str, ...]]:
    return [(name(c.program) if c.program else "?", *c.args) for c in commands(path)]


def test_porting_guides_have_the_same_sections() -> None:
    english, japanese = (sections(ROOT / page) for page in GUIDES)
    assert len(english) >= 10, f"docs/porting.md has {len(english)} sections"
    assert len(english) == len(japanese), f"## sections: English {len(english)}, Japanese {len(japanese)}"


def test_porting_guides_have_the_same_commands() -> None:
    english, japanese = (command_words(ROOT / page) for page in GUIDES)
    assert english, "docs/porting.md runs no command"
    assert english == japanese


def test_porting_guides_have_the_same_tables() -> None:
    english, japanese = (table_rows(ROOT / page) for page in GUIDES)
    assert sum(english) >= 20, f"docs/porting.md's tables have {sum(english)} rows"
    assert english == japanese, f"rows per table: English {english}, Japanese {japanese}"
