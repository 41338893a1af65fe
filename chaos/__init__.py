"""The chaos harness (``make chaos``): does "never twice" hold when things go wrong?

Modules, one job each:

- :mod:`chaos.run`: the entry point; runs every scenario on each configuration (one process
  each, :mod:`chaos.one`), prints one table, exits non-zero on any duplicate or loss;
- :mod:`chaos.stage`: a sandbox process, a fresh database and unique queue names for one
  scenario, all removed at the end (reuses bench/pipeline.py and tests/cluster.py);
- :mod:`chaos.kills`, :mod:`chaos.timeouts`, :mod:`chaos.races`: the scenarios (kill -9 of
  the cluster, a 504-answering gateway, 8 callers at once);
- :mod:`chaos.proxy` (the 504 gateway) and :mod:`chaos.crowd` (callers released together):
  the fast parts, also used by tests/test_chaos_parts.py;
- :mod:`chaos.failures`, :mod:`chaos.webapp`, :mod:`chaos.settle`: real failures, the app
  over HTTP for the sandbox's reports, and recovering as housekeeping does;
- :mod:`chaos.ledger`: counting at the sandbox and the table; :mod:`chaos.applog`: the app's
  warnings counted, not printed; :mod:`chaos.background`: a server in a thread.
"""
