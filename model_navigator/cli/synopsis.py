"""One-line synopses of the commands, read from their argparse parsers: the README's command table is
checked against them (tests/test_cli.py), so an option added to a parser cannot be left out of it.

    python -m model_navigator.cli.synopsis     # print the table's first column, one row per command
"""

from __future__ import annotations

import argparse
from typing import Dict, List

# Every command takes these; the README says so once instead of in every row.
COMMON_OPTIONS = ("-h", "--help", "--debug")


def _metavar(action: argparse.Action) -> str:
    if action.metavar is not None:
        return str(action.metavar)
    if action.choices is not None:
        return "{" + ",".join(str(c) for c in action.choices) + "}"
    return action.dest.upper()


def _argument(action: argparse.Action) -> str:
    """How one argument reads in the synopsis: `--json`, `--batch-size N`, `--batch-sizes N ...`, `[...]`."""
    if not action.option_strings:
        return _metavar(action)
    name = max(action.option_strings, key=len)  # the long spelling
    if action.nargs == 0:
        text = name
    elif action.nargs in ("+", "*"):
        text = f"{name} {_metavar(action)} ..."
    else:
        text = f"{name} {_metavar(action)}"
    return text if action.required else f"[{text}]"


def synopsis(name: str, parser: argparse.ArgumentParser) -> str:
    """`name` and every argument of its parser but the common ones, in the parser's order (required first)."""
    actions = [a for a in parser._actions if not set(a.option_strings) & set(COMMON_OPTIONS)]
    ordered = [a for a in actions if not a.option_strings] + [a for a in actions if a.option_strings and a.required]
    ordered += [a for a in actions if a.option_strings and not a.required]
    return " ".join([name] + [_argument(a) for a in ordered])


def command_synopses() -> Dict[str, str]:
    """Command name -> its synopsis, for every subcommand of `model-navigator`."""
    from model_navigator.cli.main import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {name: synopsis(name, p) for name, p in sub.choices.items()}


def main() -> List[str]:
    lines = [f"`{text}`" for text in command_synopses().values()]
    print("\n".join(lines))
    return lines


if __name__ == "__main__":
    main()
