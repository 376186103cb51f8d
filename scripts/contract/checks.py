"""What the contract checks written as scripts share: a failure that says what was expected and
what came back, and a line for each check that passed."""

from __future__ import annotations

from typing import Any, NoReturn


class CheckFailure(Exception):
    pass


def fail(what: str, expected: Any = None, got: Any = None) -> NoReturn:
    raise CheckFailure(f"{what}\n    expected: {expected!r}\n    got:      {got!r}")


def expect(what: str, expected: Any, got: Any) -> None:
    """`got` must equal `expected` and be of the same type (so 1 is not True, nor "1")."""
    if got != expected or type(got) is not type(expected):
        fail(what, expected, got)


def ok(what: str) -> None:
    print(f"ok   {what}", flush=True)
