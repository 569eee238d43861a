"""The purchase engine: buy each image once, store and verify it, record every step.

Modules, in the order a purchase meets them:

* :mod:`.manifest` -- the manifest model, its state machine and the request fingerprint;
* :mod:`.ledger` -- the only place a stored manifest changes state (record and save together);
* :mod:`.run` -- :class:`~.run.GenerationRun`, one task instance's purchase in the worker;
* :mod:`.series` -- ``n`` images as ``n`` requests (Gemini), each recorded before the next;
* :mod:`.deferred` -- a synchronous model's request sent by the triggerer;
* :mod:`.saved_answers` -- an unreadable paid answer kept beside the manifest;
* :mod:`.collection` -- store and verify what was bought, complete the manifest;
* :mod:`.events`, :mod:`.polling` -- the trigger event, the one wait policy;

Nothing is re-exported here on purpose: the operators import engine modules only when a task
runs, so parsing a DAG never loads the hook, httpx or boto3 through this package.
"""
