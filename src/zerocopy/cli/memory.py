"""``zerocopy memory``: the shared-pool report, the capability table, a demo.

A new process has shared nothing yet, so by default this prints the capability table and
how to get a live report (``zerocopy.memory.report()`` inside the job). ``--demo`` runs a
small attributed workload over host memory and prints its report; ``--gpu`` reports the
device's default pool as this process sees it.
"""

from __future__ import annotations

import argparse
import ctypes.util
import json
import os
import threading

from zerocopy._display import report_rich
from zerocopy.errors import DeviceError, FrameworkNotInstalledError, ZeroCopyError, message
from zerocopy.memory import DevicePoolResource, HostMemoryResource, report, share
from zerocopy.memory.hooks import capability_table

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument("--demo", action="store_true",
                        help="share a host pool, allocate as several frameworks, leak one, report")
    parser.add_argument("--gpu", action="store_true",
                        help="report the device's default CUDA pool (needs a GPU)")
    parser.add_argument("--capabilities", action="store_true",
                        help="only the per-framework capability table")


def _capabilities(as_json: bool) -> str:
    rows = capability_table()
    if as_json:
        return json.dumps([row.as_dict() for row in rows], indent=2)
    lines = [f"{'framework':<11} {'mode':<18} {'hooks':<6} {'before start':<13} limits"]
    for row in rows:
        lines.append(f"{row.framework:<11} {row.mode:<18} {'yes' if row.per_allocation else 'pool':<6} "
                     f"{'yes' if row.before_runtime else 'no':<13} {row.limits}")
    return "\n".join(lines)


def _demo() -> object:
    # The frameworks whose every allocation zerocopy's adaptors can see (a hook mode with
    # per_allocation), as labels over host memory: the first one limited, the last one leaking.
    frameworks = list(dict.fromkeys(c.framework for c in capability_table() if c.per_allocation))
    shared = share([], resource=HostMemoryResource(), limits={frameworks[0]: 1 << 20}, track=True)
    mr = shared.resource

    def work(framework: str, sizes: list[int]) -> None:
        for n in sizes:
            mr.deallocate(mr.allocate(n, framework=framework), n)

    threads = [threading.Thread(target=work, args=(fw, [256, 1 << 16, 1 << 20]), name=fw)
               for fw in frameworks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    leaked = mr.allocate(4096, framework=frameworks[-1])  # left outstanding on purpose
    result = shared.report()
    mr.deallocate(leaked, 4096)
    shared.undo()
    return result


def nvidia_driver() -> bool:
    """Does this machine show an NVIDIA driver (so a GPU a CUDA binding could reach)?"""
    return os.path.exists("/proc/driver/nvidia/version") or ctypes.util.find_library("cuda") is not None


def _gpu() -> object:
    try:
        return report(resource=DevicePoolResource())
    except FrameworkNotInstalledError as exc:  # no CUDA binding: is there a GPU to bind to?
        driver = nvidia_driver()
        raise DeviceError(message(
            "`zerocopy memory --gpu` reports the shared pool of a CUDA GPU, and none can be "
            "reached here", got="no CUDA runtime binding (cuda-bindings, or CuPy)"
            + ("" if driver else " and no NVIDIA driver"),
            hint="pip install cuda-bindings to reach this machine's GPU" if driver else
                 "this machine shows no NVIDIA GPU: `zerocopy memory --demo` shows the same "
                 "report over host memory")) from exc
    except ZeroCopyError:  # already typed, with its own hint
        raise
    except Exception as exc:  # a binding but no device or driver
        raise DeviceError(message(
            "`zerocopy memory --gpu` found no usable CUDA GPU", got=f"{type(exc).__name__}: {exc}",
            hint="`zerocopy memory --demo` shows a report over host memory")) from exc


def _print_capabilities() -> None:
    from zerocopy.cli.console import out, table
    out().print(table(("framework", "mode", "hooks", "before start", "limits"),
                      [(r.framework, r.mode, "yes" if r.per_allocation else "pool",
                        "yes" if r.before_runtime else "no", r.limits) for r in capability_table()],
                      title="How each framework joins the shared pool"))


def main(args: argparse.Namespace) -> int:
    from zerocopy.cli.console import err, out

    if args.capabilities:
        if args.json:
            print(_capabilities(True))
        else:
            _print_capabilities()
        return 0
    if args.demo or args.gpu:
        result = _demo() if args.demo else _gpu()
        if args.json:
            print(json.dumps(result.to_dict(), indent=2, default=str))  # type: ignore[attr-defined]
        else:
            out().print(report_rich(result))
        return 0
    current = report()
    if args.json:
        print(json.dumps({"report": current.to_dict(),
                          "capabilities": json.loads(_capabilities(True))}, indent=2, default=str))
        return 0
    out().print(report_rich(current))
    err().print("\nNothing is shared in a fresh process: call zerocopy.memory.share() in your job and "
                "print(zerocopy.memory.report()) there, or try `zerocopy memory --demo`.\n",
                style="dim", markup=False)
    _print_capabilities()
    return 0
