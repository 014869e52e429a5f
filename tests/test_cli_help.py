"""``--help`` teaches: every command and group describes itself and shows a runnable
example, group listings show whole summaries, ``forestream server --help`` names every
API the server serves, and a mistyped command is answered with the closest real one."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from forestream.cli import main
from forestream.cli.groups import first_sentence, summary

SCRIPT = Path(sys.executable).with_name("forestream")


def _walk(command: click.Command, path: tuple[str, ...]):
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            if not sub.hidden:
                yield from _walk(sub, (*path, name))


COMMANDS = list(_walk(main, ()))


def help_of(*path: str) -> str:
    result = CliRunner().invoke(main, [*path, "--help"], prog_name="forestream",
                                terminal_width=80)
    assert result.exit_code == 0, result.output
    return result.output


def run_cli(*args: str) -> subprocess.CompletedProcess:
    cmd = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "forestream.cli"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "COLUMNS": "80"})


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS],
                         ids=lambda p: " ".join(("forestream", *p)))
def test_every_command_describes_itself_and_shows_an_example(path):
    text = help_of(*path)
    command = dict(COMMANDS)[path]
    assert re.search(r"\w{3,}.*\w{3,}.*\w{3,}", summary(command)), \
        f"forestream {' '.join(path)}: no description"
    line = "".join(" " + re.escape(word) for word in path)
    example = re.compile(r"^\s*(?:\$ )?forestream" + line + r"(?: |$)", re.M)
    assert example.search(text), f"forestream {' '.join(path)} --help has no example:\n{text}"


def _listing(text: str) -> dict[str, str]:
    """The Commands section of a help text: name -> its summary, wrapped lines joined."""
    rows: dict[str, str] = {}
    name = None
    for line in text.split("Commands:\n", 1)[1].splitlines():
        if not line.strip():
            break
        if line.startswith("  ") and not line.startswith("   "):
            name, _, rest = line.strip().partition(" ")
            rows[name] = rest.strip()
        elif name is not None:
            rows[name] += " " + line.strip()
    return rows


def _never_cut_mid_phrase(name: str, command: click.Command, text: str) -> None:
    """A listing's summary is the command's short help, its help's first sentence, or
    an opening clause of that sentence (ending before ": ", "; ", " (" or " — ")."""
    assert not text.endswith("..."), f"{name}: {text!r}"
    sentence = first_sentence(command)
    if text != sentence:
        assert sentence.startswith(text), f"{name}: {text!r} is not from {sentence!r}"
        assert re.match(r": |; | \(| — ", sentence[len(text):]), \
            f"{name}: {text!r} ends mid-phrase (of {sentence!r})"


@pytest.mark.parametrize("path", [p for p, c in COMMANDS if isinstance(c, click.Group)],
                         ids=lambda p: " ".join(("forestream", *p)))
def test_group_listings_show_one_line_summaries_never_cut_mid_phrase(path):
    group = dict(COMMANDS)[path]
    assert isinstance(group, click.Group)
    text = help_of(*path)
    rows = _listing(text)
    visible = {n for n, c in group.commands.items() if not c.hidden}
    assert set(rows) == visible
    for name, summary_text in rows.items():
        _never_cut_mid_phrase(name, group.commands[name], summary_text)
        if summary_text != first_sentence(group.commands[name]):  # shortened to fit
            line = next(line for line in text.splitlines() if line.startswith(f"  {name} "))
            assert line.endswith(summary_text), f"{name}: shortened, yet wrapped"


def test_top_level_help_as_a_user_runs_it_lists_one_line_summaries():
    proc = run_cli("--help")
    assert proc.returncode == 0, proc.stderr
    rows = _listing(proc.stdout)
    assert rows["apps"] == "Stream processing applications: your code, run by the server."
    for name, text in rows.items():
        _never_cut_mid_phrase(name, main.commands[name], text)


def test_server_help_names_every_api_the_server_serves(tmp_path):
    from forestream.config import Settings
    from forestream.server.app import create_app

    settings = Settings()
    settings.data_dir = tmp_path
    app = create_app(settings)
    text = " ".join(help_of("server").split())
    assert "Kinesis Data Streams API" in text and "SageMaker API" in text
    families = set()
    for route in app.routes:
        parts = getattr(route, "path", "").strip("/").split("/")
        if parts[:2] == ["api", "v1"] and len(parts) > 2:
            families.add(parts[2].removesuffix(".json").replace("-", " "))
        elif parts[0] in ("console", "health", "metrics"):
            families.add("/" + parts[0])
        elif parts[0] == "endpoints" and parts[-1] == "invocations":
            families.add("SageMaker runtime API")
    assert families >= {"streams", "applications", "models", "endpoints", "optimizer",
                        "/console", "/health", "/metrics", "SageMaker runtime API"}
    missing = [family for family in sorted(families) if family not in text]
    assert missing == [], f"forestream server --help does not name: {missing}"


@pytest.mark.parametrize("path", [p for p, c in COMMANDS
                                  if any(o.name == "endpoint_url" for o in c.params)],
                         ids=lambda p: " ".join(("forestream", *p)))
def test_endpoint_url_help_names_the_forestream_server(path):
    option = next(o for o in dict(COMMANDS)[path].params if o.name == "endpoint_url")
    assert isinstance(option, click.Option) and option.help
    assert "Kinesis endpoint" not in option.help
    assert "server" in option.help


def test_a_command_one_level_off_suggests_the_full_command_line():
    proc = run_cli("models", "logs", "churn")
    assert proc.returncode == 2
    assert "No such command 'logs'. Did you mean 'forestream models endpoints logs'?" \
        in proc.stderr


def test_a_mistyped_command_suggests_the_closest_existing_one():
    result = CliRunner().invoke(main, ["strams", "list"], prog_name="forestream")
    assert result.exit_code == 2
    assert "No such command 'strams'. Did you mean 'streams'?" in result.output
    result = CliRunner().invoke(main, ["apps", "snapshot", "list", "temps"],
                                prog_name="forestream")
    assert "Did you mean 'snapshots'?" in result.output
    result = CliRunner().invoke(main, ["models", "frobnicate"], prog_name="forestream")
    assert result.exit_code == 2 and "No such command 'frobnicate'." in result.output
    assert "Did you mean" not in result.output


@pytest.mark.parametrize("path", [p for p, c in COMMANDS
                                  if any(isinstance(o, click.Option) for o in c.params)],
                         ids=lambda p: " ".join(("forestream", *p)))
def test_every_option_says_what_it_does(path):
    bare = [o.opts[0] for o in dict(COMMANDS)[path].params
            if isinstance(o, click.Option) and not o.hidden and not (o.help or "").strip()]
    assert bare == [], f"forestream {' '.join(path)}: options without help: {bare}"


def _examples(text: str):
    """The ``forestream ...`` command lines of a help text's examples."""
    for line in text.splitlines():
        line = re.sub(r"^\s*(?:\$ )?", "", line)
        if line.startswith("forestream ") and line.split()[1] in main.commands:
            yield re.split(r"\s(?:&&|\|\||\||;|&|#|>|<)\s|\s&$|\s{2,}|\s\\$", line)[0]


def _parse(args: list[str]) -> None:
    """Parse ``args`` as the real CLI does, down to the command they name, without
    running it: unknown options, missing arguments and bad values raise."""
    ctx = main.make_context("forestream", list(args))
    command: click.Command = main
    while isinstance(command, click.Group):
        rest = [*ctx._protected_args, *ctx.args]
        if not rest:
            return  # a group's own example: its listing
        name, sub, rest = command.resolve_command(ctx, rest)
        assert name is not None and sub is not None
        command = sub
        ctx = command.make_context(name, rest, parent=ctx)


def test_every_example_in_help_parses(tmp_path, monkeypatch):
    """The examples are runnable: click accepts each one (options, argument counts,
    choices, numbers), given the files and folders it names."""
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    checked = []
    for path, _ in COMMANDS:
        for example in _examples(help_of(*path)):
            words = shlex.split(example)[1:]
            for word in words:
                if word.startswith(("-", "/")) or "://" in word or "=" in word:
                    continue
                if re.search(r"\.[a-z]{2,7}$", word):  # a file it reads
                    Path(word).parent.mkdir(parents=True, exist_ok=True)
                    Path(word).touch()
                elif "/" in word or word.isupper():  # a folder, or DIR
                    Path(word).mkdir(parents=True, exist_ok=True)
            try:
                _parse(words)
            except click.exceptions.Exit:
                pass  # --help, --version
            except click.ClickException as error:
                raise AssertionError(f"{example!r} (forestream {' '.join(path)} --help): "
                                     f"{error.format_message()}") from None
            checked.append(example)
    assert len(checked) > len(COMMANDS)
