"""Executors: what runs the runs of a sweep (:func:`shattering.executors.sweep.run_sweep`), and how.

- ``local`` (default, :mod:`shattering.executors.local`): in this process, one run (or packed group) after
  another.
- ``ray`` (:mod:`shattering.executors.ray_executor`): each run or packed group is a Ray task with its own
  resources, on a laptop or across the machines of a Ray cluster (``pip install 'shattering[ray]'``).
- Packing (:mod:`shattering.executors.packing`), a scheduling decision: which MLP runs train together as one
  packed model, for either executor.

An executor takes the sweep's configs and yields one :class:`~shattering.executors.outcome.Outcome` per
config as runs end (in any order); the sweep prints a line per outcome and puts them back in config order.
"""

from __future__ import annotations

EXECUTORS = ("local", "ray")
