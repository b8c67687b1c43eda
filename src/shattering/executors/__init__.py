"""Executors: what runs the runs of a sweep (:func:`shattering.sweep.run_sweep`).

- ``local`` (default, :mod:`shattering.sweep`): in this process, one run (or packed group) after another.
- ``ray`` (:mod:`shattering.executors.ray_executor`): each run or packed group is a Ray task with its own
  resources, on a laptop or across the machines of a Ray cluster (``pip install 'shattering[ray]'``).

An executor takes the sweep's configs and yields one :class:`~shattering.sweep.Outcome` per config as runs
end (in any order); the sweep prints a line per outcome and puts them back in config order.
"""

from __future__ import annotations

EXECUTORS = ("local", "ray")
