"""The suite holds on any date: test modules reach time only through the project's clock.

Two static rules over every test module (``ast``, no execution), the dynamic proof
being ``make test-dates`` (the suite under libfaketime at awkward dates):

1. **No wall-clock reads.** ``datetime.now()``, ``date.today()``, ``time.time()`` and
   their kin are refused in test modules: a test takes "now" from
   ``backend.core.clock`` (which a test may move) or fixes it with ``tests/clocks.py``.
   Durations (``time.monotonic``, ``perf_counter``) are not dates and stay allowed.
2. **Fixed dates run under a moved clock.** A test that drives the app (takes one of
   the app fixtures) and names a date of 2026 or later must move the project's clock
   in its body (``frozen``, ``ticking``, ``set_time``, ``set_clock``,
   ``shifted_clock``): otherwise it asserts about a fixed day while the app lives on
   the real one, and breaks once the real calendar passes that day — the reminder
   test of issue 16. Tests of pure functions (no app fixture) may name any date.

The exceptions are listed below with their reasons (docs/decisions.md, "Time in tests").
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

TESTS = Path(__file__).parent
WALL_CLOCK = {
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("datetime", "today"),
    ("date", "today"),
    ("time", "time"),
    ("time", "time_ns"),
}
CLOCK_MOVERS = {"frozen", "ticking", "set_time", "set_clock", "shifted_clock"}
APP_FIXTURES = {"db", "gql", "http", "app", "world", "town", "seeded"}
ISO_DATE = re.compile(r"\b(20\d\d)-[01]\d-[0-3]\d")
FIRST_YEAR = 2026

# module -> why it may read the wall clock
WALL_CLOCK_ALLOWED = {
    "clocks.py": "the one home of test clocks (shifted_clock runs relative to real time)",
    "test_jwt_rotation.py": "PyJWT checks exp/iat against the wall clock: tokens are minted "
    "against it",
    "test_clock_discipline.py": "names the forbidden calls",
}


def _modules() -> list[Path]:
    return sorted(p for p in TESTS.glob("*.py") if p.name != "__init__.py")


def _called(node: ast.Call) -> tuple[str, str] | None:
    func = node.func
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        return func.value.id, func.attr
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Attribute):
        return func.value.attr, func.attr  # datetime.datetime.now
    return None


def _name(node: ast.Call) -> str | None:
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)


def _year(value: object) -> int | None:
    if isinstance(value, int) and 2000 <= value <= 2100:
        return value
    if isinstance(value, str) and (m := ISO_DATE.search(value)):
        return int(m.group(1))
    return None


def _names_a_fixed_date(fn: ast.AST) -> bool:
    for node in ast.walk(fn):
        if isinstance(node, ast.Call) and _name(node) in {"sh", "datetime", "date", "D"}:
            first = node.args[0] if node.args else None
            if isinstance(first, ast.Constant) and (_year(first.value) or 0) >= FIRST_YEAR:
                return True
        is_text = isinstance(node, ast.Constant) and isinstance(node.value, str)
        if is_text and (_year(node.value) or 0) >= FIRST_YEAR:
            return True
    return False


def _tests(tree: ast.Module) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    return [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name.startswith("test_")
    ]


def test_no_test_module_reads_the_wall_clock() -> None:
    found = []
    for path in _modules():
        if path.name in WALL_CLOCK_ALLOWED:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and _called(node) in WALL_CLOCK:
                found.append(f"{path.name}:{node.lineno} {'.'.join(_called(node) or ())}()")
    assert not found, (
        "read time through backend.core.clock or tests/clocks.py, not the wall clock:\n"
        + "\n".join(found)
    )


def test_app_tests_naming_a_fixed_date_move_the_clock() -> None:
    found = []
    for path in _modules():
        for fn in _tests(ast.parse(path.read_text(encoding="utf-8"))):
            args = {a.arg for a in fn.args.args}
            if not args & APP_FIXTURES or not _names_a_fixed_date(fn):
                continue
            called = {_name(n) for n in ast.walk(fn) if isinstance(n, ast.Call)}
            if not called & CLOCK_MOVERS:
                found.append(f"{path.name}::{fn.name}")
    assert not found, (
        "these tests drive the app and name a fixed date without moving the clock "
        "(tests/clocks.py: frozen, ticking, set_time):\n" + "\n".join(found)
    )


def test_the_rules_see_what_they_are_meant_to() -> None:
    """The checker itself: a wall-clock read and an unfrozen fixed date are both found."""
    bad = ast.parse(
        "async def test_x(gql):\n"
        "    when = datetime.now(UTC)\n"
        "    await gql(Q, {'day': '2026-11-24'})\n"
    )
    calls = [n for n in ast.walk(bad) if isinstance(n, ast.Call)]
    assert any(_called(n) in WALL_CLOCK for n in calls)
    (fn,) = _tests(bad)
    assert _names_a_fixed_date(fn)
    good = ast.parse("async def test_y(gql):\n    with frozen(sh(2026, 11, 2)):\n        pass\n")
    (fn,) = _tests(good)
    assert {_name(n) for n in ast.walk(fn) if isinstance(n, ast.Call)} & CLOCK_MOVERS
