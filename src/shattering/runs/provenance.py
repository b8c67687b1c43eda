"""Who made a record: a finished run of Section 2.1 of Zhang et al. (ICLR 2017) that is read again instead of
trained says when it was made and by which code (the ``versions`` its ``summary.json`` states,
:mod:`shattering.versions`), and says so when that is other code than the code running now."""

from __future__ import annotations

from datetime import datetime

from ..versions import code_version


def made_by(version: str | None) -> str:
    """``shattering 0.1.0 (commit abc1234)`` for the code version ``0.1.0+gabc1234`` a record states."""
    if not version:
        return "shattering of unknown version (the record states none)"
    release, _, commit = str(version).partition("+g")
    return f"shattering {release}" + (f" (commit {commit})" if commit else "")


def when(stamp: str | None) -> str:
    """``2026-12-02 00:49 UTC`` for the ISO time a summary states (as stated when it does not parse)."""
    try:
        return datetime.fromisoformat(str(stamp)).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return str(stamp) if stamp else "an unknown date"


def recorded_version(summary: dict) -> str | None:
    """The code version a summary states (None when it states none)."""
    versions = summary.get("versions")
    return versions.get("shattering") if isinstance(versions, dict) else None


def other_code(summary: dict) -> bool:
    """True when the record was made by other code (another version or commit) than the code running now."""
    return recorded_version(summary) != code_version()


def reuse_note(summary: dict) -> str:
    """What a reused record's message starts with: ``done before, on DATE, by shattering VERSION (commit)``."""
    return f"done before, on {when(summary.get('finished_at'))}, by {made_by(recorded_version(summary))}"


def other_code_note(summary: dict) -> str | None:
    """The sentence that says a record was made by other code than the code running now (None when not)."""
    if not other_code(summary):
        return None
    return (f"This record was made by other code than the code running now ({made_by(code_version())}): its "
            "numbers may differ from what this code computes; rerun it (--rerun, or rerun=True in Python) to train "
            "it again with this code.")


def reuse_message(summary: dict) -> str:
    """A reused record's message: when and by which code it was made, the run's own message, and a word when
    other code made it."""
    warning = other_code_note(summary)
    return f"{reuse_note(summary)}: {summary.get('message', '')}" + (f" {warning}" if warning else "")


def reuse_facts(summary: dict) -> dict:
    """The reuse in fields (for ``--json``): when the record was made, by which code, the code running now."""
    return {"finished_at": summary.get("finished_at"), "made_by": recorded_version(summary),
            "running": code_version(), "other_code": other_code(summary), "note": reuse_message(summary)}
