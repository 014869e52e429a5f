"""Every ``forestream ...`` command a user is told to run exists in the real CLI.

A hint that names a command that does not exist (``forestream models logs EP`` when the
command is ``forestream models endpoints logs EP``) sends the user to an error at the
worst moment. This test reads every place a user reads a command — the strings in
``src/`` (error messages, hints, docstrings), every command's ``--help``, ``docs/*.md``,
``README.md`` and ``examples/`` — finds each ``forestream WORD ...`` it names, and walks
click's command tree of :data:`forestream.cli.main` along it: each word after a group
must be one of that group's sub-commands, each ``--option`` named must be an option
of the command it follows, and a literal value given to an option with fixed choices
must be one of them. The ``docs/X.md`` pages they point to must exist too.

Mentions are read at three strengths. Inside backticks and on lines that start with
``forestream`` / ``$ forestream`` (examples, code blocks) the mention is a command line:
every word and option is checked. In running prose (``a forestream server started
with --streams``) only the command words directly after ``forestream`` and the options
directly after them are checked, so that sentences about "the forestream server" are
not mistaken for commands while ``forestream models logs`` still is.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import click
import pytest

from forestream.cli import main

ROOT = Path(__file__).resolve().parents[1]
WORD = re.compile(r"[a-z][a-z0-9-]*\Z")
# ``forestream`` as a program name: not ``forestream.cli``, ``forestream's``, ``forestream_x``.
MENTION = re.compile(r"(?<![\w.-])forestream(?= +\S)")
# ... as the program a piece of inline code runs (not ``realm="forestream console"``).
CODE_MENTION = re.compile(r"(?:^|(?:&&|\|\||;|\||\$)\s*)(?:\S*/)?forestream(?= +\S)")
# Where a command line ends inside a shell line.
SHELL_END = re.compile(r"\s(?:&&|\|\||\||;|&|#|>|<|2>)\s|\s&$|[;)]$|\s{2,}")
# A value that stands for one (NAME, ID, {X}, <date>, "...").
PLACEHOLDER = re.compile(r"[A-Z0-9_:.\[\]=|-]+|.*[{}<>].*|\.\.\.")
# Inline code: ``rst`` or `markdown`.
CODE = re.compile(r"``([^`]+)``|`([^`\n]+)`")


@dataclass(frozen=True)
class Problem:
    where: str
    text: str
    why: str

    def __str__(self) -> str:
        return f"{self.where}: {self.text!r}: {self.why}"


def _options(command: click.Command) -> dict[str, click.Option | None]:
    names: dict[str, click.Option | None] = {"--help": None, "-h": None}
    for param in command.params:
        if isinstance(param, click.Option):
            names.update(dict.fromkeys([*param.opts, *param.secondary_opts], param))
    return names


def _choice_problem(option: click.Option | None, name: str, value: str | None) -> str | None:
    """Why ``value`` after ``name`` is not one of the option's choices (a literal value
    only: placeholders such as NAME, ID or {X} pass)."""
    if option is None or option.is_flag or not isinstance(option.type, click.Choice):
        return None
    if value is None or value.startswith("-") or PLACEHOLDER.fullmatch(value):
        return None
    choices = [str(c) for c in option.type.choices]
    fold = (lambda text: text) if option.type.case_sensitive else str.lower
    if fold(value) not in map(fold, choices):
        return f"{name} {value}: not one of {', '.join(choices)}"
    return None


def check_command_line(words: list[str], strict: bool) -> str | None:
    """Why ``forestream`` + ``words`` is not a command line of the real CLI, or None.

    ``strict``: the words are a whole command line (code, backticks), so every later
    word and option is checked; otherwise (prose) only the words that name commands and
    the options right after them.
    """
    command: click.Command = main
    path = ["forestream"]
    rest = list(words)
    while rest and isinstance(command, click.Group):
        word = rest[0]
        if word.startswith("-"):
            break
        sub = command.commands.get(word)
        if sub is None:
            if not WORD.match(word) or (not strict and path == ["forestream"]):
                return None  # a placeholder (NAME, {X}, ...) or prose ("forestream keeps")
            return (f"{' '.join(path)} has no command {word!r} "
                    f"(it has: {', '.join(sorted(command.commands))})")
        command, path = sub, [*path, word]
        rest = rest[1:]
    known = _options(command)
    for i, word in enumerate(rest):
        if not word.startswith("--"):
            if strict:
                continue
            break
        option, equals, value = word.partition("=")
        option = option.rstrip(".,:)")
        if not re.fullmatch(r"--[a-z0-9][a-z0-9-]*", option):
            continue
        if option not in known:
            return f"{' '.join(path)} has no option {option}"
        if strict:
            given = value if equals else (rest[i + 1] if i + 1 < len(rest) else None)
            why = _choice_problem(known[option], option, given)
            if why is not None:
                return f"{' '.join(path)}: {why}"
    return None


def _words(text: str) -> list[str]:
    return [w.strip("`'\",") for w in text.split()]


def mentions(text: str) -> list[tuple[str, bool]]:
    """Each ``forestream ...`` in ``text`` as (the words after it, strict)."""
    found: list[tuple[str, bool]] = []
    for match in CODE.finditer(text):
        inner = match.group(1) or match.group(2)
        for m in CODE_MENTION.finditer(inner):
            found.append((SHELL_END.split(inner[m.end():])[0], True))
    for line in CODE.sub(" ", text).splitlines():
        stripped = re.sub(r"^\s*(?:\$ |>>> |- |\* )?", "", line)
        start = re.match(r"(?:\S*/)?forestream +(\S+)", stripped)
        if start and start.group(1) in main.commands:
            # an example line (help texts, code blocks): a whole command line, up to the
            # two spaces that start a description column or the end of the command
            found.append((SHELL_END.split(stripped[start.start(1):])[0], True))
            continue
        for m in MENTION.finditer(line):
            found.append((line[m.end():], False))
    return found


def problems_in(text: str, where: str) -> list[Problem]:
    out = []
    for words, strict in mentions(text):
        why = check_command_line(_words(words), strict)
        if why is not None:
            out.append(Problem(where, "forestream " + " ".join(words.split()[:6]), why))
    return out


def _python_strings(path: Path) -> list[tuple[int, str]]:
    """The string literals of a module (docstrings, messages, f-strings with their
    placeholders as ``{X}``), adjacent literals joined as Python joins them."""
    tree = ast.parse(path.read_text(), filename=str(path))
    inside_fstring = {id(v) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr)
                      for v in node.values}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            text = "".join(v.value if isinstance(v, ast.Constant) else "{X}"
                           for v in node.values)
            out.append((node.lineno, text))
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str)
              and id(node) not in inside_fstring):
            out.append((node.lineno, node.value))
    return out


def _walk(command: click.Command, path: list[str]):
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from _walk(sub, [*path, name])


def help_text(path: list[str], command: click.Command) -> str:
    parent = None
    for i in range(len(path)):
        parent = click.Context(main if i == 0 else _walk_to(path[1:i + 1]),
                               info_name=path[i], parent=parent, terminal_width=200)
    assert parent is not None
    return command.get_help(parent)


def _walk_to(names: list[str]) -> click.Command:
    command: click.Command = main
    for name in names:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    return command


ALL_COMMANDS = list(_walk(main, ["forestream"]))
# Files besides Python modules that users read (console scripts and pages, READMEs).
TEXT_FILES = {".js", ".mjs", ".html", ".md", ".txt"}


# --------------------------------------------------------------------------- the checker

def test_the_checker_catches_a_hint_naming_a_command_that_does_not_exist():
    message = ("Received client error (424) from model. See the endpoint's logs "
               "(forestream models logs {X}).")
    assert [p.why for p in problems_in(message, "m")] == [
        "forestream models has no command 'logs' (it has: approve, delete, deploy, "
        "describe, endpoints, import, invoke, list, reject, transform, update, versions)"]
    assert problems_in("see `forestream models endpoints logs EP`", "m") == []
    assert problems_in("run forestream models endpoints logs churn --tail 5", "m") == []


def test_the_checker_catches_options_the_command_does_not_have():
    assert [p.why for p in problems_in("`forestream streams create s --shard 2`", "m")] == [
        "forestream streams create has no option --shard"]
    assert problems_in("  $ forestream streams create s --shards 2 | tee x --nope", "m") == []
    assert [p.why for p in problems_in("start forestream server --stream nats://x", "m")] \
        == ["forestream server has no option --stream"]


def test_the_checker_catches_a_value_that_is_not_one_of_the_choices():
    assert [p.why for p in problems_in("`forestream apps start t --restore newest`", "m")] \
        == ["forestream apps start: --restore newest: not one of latest, skip, snapshot"]
    assert problems_in("`forestream apps start t --restore snapshot --snapshot S`", "m") == []
    assert problems_in("`forestream models versions --status STATUS`", "m") == []
    assert [p.why for p in problems_in(
        "  forestream models versions --approval-status Pending", "m")] == [
        "forestream models versions: --approval-status Pending: not one of "
        "PendingManualApproval, Approved, Rejected"]


def test_the_checker_leaves_prose_about_forestream_alone():
    text = ("a forestream server started here; forestream keeps versioned models; "
            "forestream's REST API; import forestream.cli")
    assert problems_in(text, "m") == []


# --------------------------------------------------------------------------- the project

def test_every_command_named_in_the_sources_exists():
    problems = []
    for path in sorted((ROOT / "src").rglob("*.py")):
        for line, text in _python_strings(path):
            problems += problems_in(text, f"{path.relative_to(ROOT)}:{line}")
    for path in sorted(p for p in (ROOT / "src").rglob("*") if p.suffix in TEXT_FILES
                       and "vendor" not in p.parts and "node_modules" not in p.parts):
        for number, text in enumerate(path.read_text().splitlines(), 1):
            problems += problems_in(text, f"{path.relative_to(ROOT)}:{number}")
    assert problems == [], "\n".join(map(str, problems))


@pytest.mark.parametrize("path", sorted([*(ROOT / "docs").glob("*.md"), ROOT / "README.md",
                                         *(p for p in (ROOT / "examples").rglob("*")
                                           if p.is_file() and p.suffix in
                                           {".py", ".md", ".sh", ".txt", ".ipynb"})]),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_every_command_named_in_docs_and_examples_exists(path):
    problems = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        problems += problems_in(line, f"{path.relative_to(ROOT)}:{number}")
    assert problems == [], "\n".join(map(str, problems))


def test_every_command_named_in_help_texts_exists():
    problems = []
    for path, command in ALL_COMMANDS:
        problems += problems_in(help_text(path, command), " ".join(path) + " --help")
    assert problems == [], "\n".join(map(str, problems))


# --------------------------------------------------------------------------- doc pages

DOC_PAGE = re.compile(r"(?<![\w/])docs/([\w.-]+\.md)")
DOC_LINK = re.compile(r"\]\(([\w.-]+\.md)(?:#[^)]*)?\)")


def test_every_docs_page_a_message_or_help_names_exists():
    """``see docs/X.md`` in a message, a --help or a page must point at a page that is
    there (and a page's relative link at a sibling page)."""
    named: list[tuple[str, str]] = []
    for path in sorted((ROOT / "src").rglob("*.py")):
        for line, text in _python_strings(path):
            named += [(f"{path.relative_to(ROOT)}:{line}", page)
                      for page in DOC_PAGE.findall(text)]
    for path, command in ALL_COMMANDS:
        named += [(" ".join(path) + " --help", page)
                  for page in DOC_PAGE.findall(help_text(path, command))]
    for page_file in [*(ROOT / "docs").glob("*.md"), ROOT / "README.md"]:
        text = page_file.read_text()
        pages = DOC_PAGE.findall(text)
        if page_file.parent.name == "docs":
            pages += DOC_LINK.findall(text)
        named += [(str(page_file.relative_to(ROOT)), page) for page in pages]
    assert len(named) > 10
    missing = [f"{where}: docs/{page}" for where, page in named
               if not (ROOT / "docs" / page).is_file()]
    assert missing == [], "\n".join(missing)
