"""Fixtures of the reliability suite, and the figures it prints at the end of the run.

The fault table (``test_faults``) and the crash figures (``test_crash``) are printed in pytest's terminal
summary, so they show in CI logs without ``-s``; ``python -m tests.reliability.fault_suite`` and ``python -m
tests.reliability.crash_harness`` print the same tables on their own.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from tests.reliability.support import FIGURES


@pytest.fixture(autouse=True)
def _quiet_sandbox_servers() -> Iterator[None]:
    """Injected resets make aiohttp's server log a traceback per request; they are expected here."""
    logger = logging.getLogger("aiohttp.server")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for title, text in FIGURES.items():
        terminalreporter.write_sep("=", title)
        terminalreporter.write_line(str(text))
