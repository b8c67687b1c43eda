"""Passive OpenMP waiting, set before torch loads its OpenMP runtime (libgomp reads it once, when it loads).

By default libgomp's idle threads spin for a while between parallel regions, which on a machine with more
threads than free cores burns the cores another process needs: on a 2-core AMD EPYC already busy with other
work, one SGD step of the digits MLP (batch 128) with 2 threads took 55-89 ms spinning against 3.2-4.6 ms with
``OMP_WAIT_POLICY=PASSIVE`` (1 thread: 2.0-3.6 ms either way, it has no threads to wait). Whether a second
thread pays at all is measured per machine (:mod:`shattering.tuning`), under this policy. A value the user set
is kept; importing torch before shattering leaves torch's runtime as it was.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
