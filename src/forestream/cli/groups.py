"""How every ``forestream`` command group lists its commands and answers a mistyped one.

Click's default listing cuts each summary to the width left on the line and ends it
with "..." ("Stream processing applications: your code, run and..."), mid-phrase.
:class:`CommandGroup` lists on one line the first sentence of each command's help, or
where it is too long its longest opening clause that fits ("Stream processing
applications"); the whole sentence stays in the command's own --help.

Click suggests a command whose name is close to a mistyped one within the same group
(``streams lst`` → ``list``). The mistake users actually make is a level off:
``models logs`` where the command is ``models endpoints logs``.
:class:`CommandGroup` also looks below the group and suggests the full command lines
whose last word is close to the one given.

:func:`upgrade` turns every plain :class:`click.Group` of a command tree into a
:class:`CommandGroup` (it adds behaviour, no state), so groups defined with
``@click.group()`` in any module get it once they are registered under ``forestream``.
"""

from __future__ import annotations

import difflib
import re

import click

FIRST_SENTENCE = re.compile(r"(.+?[.!?])(?:\s|$)", re.S)
# Where a sentence may end early and still read as a phrase: before ": ", "; ", " ("
# or " — " (not ", ": "import, registry" would end inside a list).
CLAUSE_END = re.compile(r"(?=: |; | \(| — )")


def first_sentence(command: click.Command) -> str:
    """The command's ``short_help``, else the first sentence of its help, whole."""
    if command.short_help:
        return " ".join(command.short_help.split())
    paragraph = (command.help or "").strip().split("\n\n", 1)[0]
    text = " ".join(paragraph.replace("\b", " ").split())
    match = FIRST_SENTENCE.match(text)
    return match.group(1) if match else text


def summary(command: click.Command, width: int | None = None) -> str:
    """The description a listing shows on one line of ``width`` characters: the first
    sentence if it fits, else its longest opening clause that fits (``Stream processing
    applications`` of ``Stream processing applications: your code, ...``), else the
    whole sentence (the listing wraps it; it is never cut mid-phrase)."""
    text = first_sentence(command)
    if width is None or len(text) <= width:
        return text
    for end in reversed([m.start() for m in CLAUSE_END.finditer(text)]):
        clause = text[:end]
        if len(clause) <= width and clause.count("(") == clause.count(")"):
            return clause
    return text


def _paths(group: click.Group, prefix: tuple[str, ...]):
    for name, command in group.commands.items():
        if command.hidden:
            continue
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from _paths(command, (*prefix, name))


class CommandGroup(click.Group):
    """A group whose listing shows whole summaries and whose errors suggest commands
    one or more levels down."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        shown = [(name, command) for name, command in
                 ((name, self.get_command(ctx, name)) for name in self.list_commands(ctx))
                 if command is not None and not command.hidden]
        if not shown:
            return
        # the width click's definition list leaves the second column
        width = formatter.width - formatter.current_indent - 2 - 2 - max(
            len(name) for name, _ in shown)
        rows = [(name, summary(command, width)) for name, command in shown]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def resolve_command(self, ctx: click.Context, args: list[str]):
        try:
            return super().resolve_command(ctx, args)
        except click.NoSuchCommand as error:
            word = error.command_name
            if difflib.get_close_matches(word, list(self.commands)):
                raise  # click already says "Did you mean ...?" for this group's commands
            deeper = [path for path in _paths(self, ()) if len(path) > 1]
            close = {path[-1] for path in deeper
                     if difflib.get_close_matches(word, [path[-1]], cutoff=0.75)}
            found = [" ".join((ctx.command_path, *path)) for path in deeper
                     if path[-1] in close]
            if not found:
                raise
            raise click.UsageError(
                f"No such command {word!r}. Did you mean "
                + " or ".join(repr(line) for line in sorted(found)[:3]) + "?", ctx) from None


def upgrade(command: click.Command) -> None:
    """Make every plain group under (and including) ``command`` a :class:`CommandGroup`."""
    if isinstance(command, click.Group):
        if type(command) is click.Group:
            command.__class__ = CommandGroup
        for sub in command.commands.values():
            upgrade(sub)
