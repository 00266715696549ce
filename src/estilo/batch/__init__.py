"""Batch runs: every content image times every style, resumable, on a process pool or Ray.

A batch is planned on the driver (inputs expanded, output names made from a template,
collisions refused up front), then each item runs on a worker that keeps one
:class:`~estilo.transfer.Stylizer` (so the network is loaded once per worker process) and
returns the PNG bytes and the parameters to embed. The driver writes every output
atomically with :func:`~estilo.io.output.save_image`, so an interrupted batch leaves only
finished images behind.

Resume: an output that already exists is skipped when its embedded parameters name the
same options (the device aside) and the same input hashes; anything else is run again.
A failed item (an unreadable image, a diverged run, a worker that died more than
``retries`` times) is recorded with a one-line error and the batch goes on.

Backends (:mod:`estilo.batch.workers`): ``local`` runs in this process (one worker) or on a
``spawn`` process pool (one worker per core, or per GPU); ``ray`` submits one Ray task per
item to a cluster (``address``) or to a local one it starts, with ``num_cpus``/``num_gpus``
declared and ``max_retries`` for workers that die. Ray is imported only by that backend.
"""

from .plan import DEFAULT_NAME, BatchError, Item, check_name, expand_inputs, plan, read_manifest
from .run import BACKENDS, ItemResult, Summary, run_batch

__all__ = [
    "BACKENDS",
    "DEFAULT_NAME",
    "BatchError",
    "Item",
    "ItemResult",
    "Summary",
    "check_name",
    "expand_inputs",
    "plan",
    "read_manifest",
    "run_batch",
]
