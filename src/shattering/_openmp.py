"""OpenMP's wait policy, decided before torch loads its OpenMP runtime (libgomp reads it once, when it loads).

libgomp's idle threads spin for a while (300,000 turns) between parallel regions before they sleep. Alone on
its cores that is what makes a step of several threads fast: on the 2-core Intel Xeon (AMX), six MLP 1x512 runs
on 10,000 Fashion-MNIST images one after another took 6.7 s spinning and 12.5 s with ``OMP_WAIT_POLICY=PASSIVE``
(every wake-up a system call); the README's digits job 9.4 s and 9.9 s. On cores that another process needs,
spinning burns them: two torch processes of 2 threads each on 2 cores measured 15x slower than either alone.

So the policy follows the core lease (:mod:`shattering.lease`): a process that starts while another process
holds a shattering core lease on this machine sleeps (``PASSIVE``); one that starts alone keeps libgomp's
default, and gives a core back when a later process waits for one (:func:`shattering.lease.rebalance`). The
workers a sweep starts on cores nobody else holds spin (:data:`PLANNED_ENV`: their plan never puts more threads
than cores). A value the user set (``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT``) is kept, and importing torch before
shattering leaves the runtime as it loaded. :data:`WAIT_POLICY` says which, for the run records.
"""

import os
import sys

from . import lease

PLANNED_ENV = "SHATTERING_PLANNED_CORES"  # set by the local executor for workers it planned on free cores
_SET_ENV = "SHATTERING_SET_OMP_WAIT"  # marks an OMP_WAIT_POLICY that shattering set (children inherit it)


def _decide() -> tuple[str, str]:
    """(policy, why): the policy as the tuning cache keys it, and why, in words."""
    if "torch" in sys.modules:
        policy = os.environ.get("OMP_WAIT_POLICY", "default")
        return policy, f"as torch loaded it, before shattering (OMP_WAIT_POLICY {policy})"
    if os.environ.get(_SET_ENV) and os.environ.get("OMP_WAIT_POLICY") == "PASSIVE":
        return "PASSIVE", "PASSIVE: inherited from the shattering process that started this one"
    for name in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT"):
        if name in os.environ:
            return f"{name}={os.environ[name]}", f"{name}={os.environ[name]}, as the user set it"
    if os.environ.get(PLANNED_ENV):
        return "default", "spin (libgomp's default): a sweep worker on cores its plan leaves to it"
    held = lease.cores_held_elsewhere()
    if held:
        if held >= lease.cpu_cores():  # every core held: the holders give one back while this process loads
            lease.announce_arrival()
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
        os.environ[_SET_ENV] = "1"
        return "PASSIVE", f"PASSIVE: another shattering process held {held} core(s) when this one started"
    return "default", "spin (libgomp's default): no other shattering process held a core when this one started"


WAIT_POLICY, WAIT_WHY = _decide()
