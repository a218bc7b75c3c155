"""zerocopy on a Dask cluster (the optional extra: ``pip install "zerocopy-ml[dask]"``).

    from distributed import Client
    import zerocopy.dask as zd

    cluster, info = zd.local_cluster(2)    # or gpu=True: LocalCUDACluster / one worker per GPU
    client = Client(cluster)
    zd.setup(client)                       # every worker, and workers that join later
    tensors = zd.to(ddf, "torch")          # one future per partition, converted where it lives
    print(zd.report(client))               # every worker's memory report, one table

``import zerocopy`` never imports Dask; this module needs ``dask`` and ``distributed``.
"""

from __future__ import annotations

import importlib.util

from zerocopy.errors import FrameworkNotInstalledError, message

for _package in ("dask", "distributed"):
    if importlib.util.find_spec(_package) is None:
        raise FrameworkNotInstalledError(message(
            f"zerocopy.dask needs {_package}, which is not installed",
            hint='pip install "zerocopy-ml[dask]"'), name=_package)

from zerocopy.dask._cluster import ClusterReport, installed, report, setup  # noqa: E402
from zerocopy.dask._local import LocalClusterInfo, local_cluster, visible_gpus  # noqa: E402
from zerocopy.dask._partitions import (  # noqa: E402
    PartitionOutput,
    by_worker,
    local,
    map_partitions_stage,
    partitions,
    to,
    train_on_workers,
)
from zerocopy.dask._plugins import environment  # noqa: E402
from zerocopy.dask._serialize import (  # noqa: E402
    deserialize_device,
    deserialize_host,
    register,
    registered,
    serialize_device,
    serialize_host,
)

__all__ = [
    "ClusterReport",
    "LocalClusterInfo",
    "PartitionOutput",
    "by_worker",
    "deserialize_device",
    "deserialize_host",
    "environment",
    "installed",
    "local",
    "local_cluster",
    "map_partitions_stage",
    "partitions",
    "register",
    "registered",
    "report",
    "serialize_device",
    "serialize_host",
    "setup",
    "to",
    "train_on_workers",
    "visible_gpus",
]
