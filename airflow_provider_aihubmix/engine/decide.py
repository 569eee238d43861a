"""What a task instance does with the manifest an earlier try left: one I/O-free decision.

:func:`decide` reads only the manifest (its state, fingerprint and answered requests) and the
task's switches, and names an :class:`Action`; :meth:`~.run.GenerationRun.start` carries it out.
Keeping the decision free of I/O lets it be tested as a table of every state, so the rule
"a request that may have been billed is never sent again blindly" is checked in one place.
"""

from __future__ import annotations

from enum import Enum

from airflow_provider_aihubmix.engine.manifest import MAY_BE_BILLED, Manifest, ManifestStatus
from airflow_provider_aihubmix.engine.resend import resent
from airflow_provider_aihubmix.engine.series import is_resumable
from airflow_provider_aihubmix.possibly_billed import PossiblyBilledPolicy


class Action(str, Enum):
    """What to do instead of (or before) buying."""

    BUY = "buy"  # nothing usable recorded: check the budget, then buy
    REUSE = "reuse"  # complete: return the stored images, no request
    FINISH_RECEIVED = "finish_received"  # answered: store from the recorded answer, no request
    REATTACH = "reattach"  # an async task id is recorded: wait for it, no request
    FINISH_SAVED = "finish_saved"  # an unreadable answer was saved: read it again, no request
    RESUME_SERIES = "resume_series"  # n requests cut short: buy only the unanswered ones
    REFUSE_POSSIBLY_BILLED = "refuse_possibly_billed"  # sent, answer lost: may be billed
    REFUSE_CHANGED = "refuse_changed"  # a different request was paid for and never completed
    # sent, answer lost, on_possibly_billed='resend_once' and not sent again yet: send once more
    RESEND = "resend"

    @property
    def buys(self) -> bool:
        """Whether carrying the action out sends a billable request (so the budget is checked)."""
        return self in (Action.BUY, Action.RESUME_SERIES, Action.RESEND)


def decide(
    previous: Manifest | None,
    fingerprint: str,
    *,
    regenerate: bool = False,
    series: bool = False,
    on_possibly_billed: PossiblyBilledPolicy = PossiblyBilledPolicy.FAIL,
) -> Action:
    """The action for a task whose request has ``fingerprint``, given the ``previous`` manifest.

    ``regenerate``: the user asked to buy again whatever was recorded. ``series``: the request is
    ``n`` requests of one image each bought from the worker (Gemini), so a series cut short with
    answered requests resumes instead of starting over. ``on_possibly_billed``
    (:mod:`~.resend`): a request that may have been billed, with nothing of it answered, is sent
    once more under ``resend_once`` -- unless it already is that second send.
    """
    if previous is None:
        return Action.BUY
    if series and not regenerate and is_resumable(previous, fingerprint):
        return Action.RESUME_SERIES
    if previous.fingerprint != fingerprint:
        # A deferred fan-out with answered requests holds bought images too.
        paid = previous.status in MAY_BE_BILLED or previous.requests_answered > 0
        if paid and previous.status is not ManifestStatus.COMPLETE and not regenerate:
            return Action.REFUSE_CHANGED
        return Action.BUY
    if regenerate:
        return Action.BUY
    status = previous.status
    if status is ManifestStatus.COMPLETE:
        return Action.REUSE
    if status is ManifestStatus.RECEIVED and previous.received:
        return Action.FINISH_RECEIVED
    if status is ManifestStatus.SUBMITTED and previous.remote_tasks:
        return Action.REATTACH
    if status is ManifestStatus.AMBIGUOUS and previous.saved_answer:
        return Action.FINISH_SAVED
    if status in (ManifestStatus.SUBMITTING, ManifestStatus.AMBIGUOUS):
        untouched = not (previous.requests_answered or previous.received or previous.records)
        if on_possibly_billed is PossiblyBilledPolicy.RESEND_ONCE and untouched and not resent(previous):
            return Action.RESEND
        return Action.REFUSE_POSSIBLY_BILLED
    # failed (the API refused: nothing billed), deferred (never sent), or a state without its data.
    return Action.BUY


__all__ = ["Action", "decide"]
