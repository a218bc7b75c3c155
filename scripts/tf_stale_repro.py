"""Repro, on a GPU with TensorFlow and CuPy: does TensorFlow see a write made through
another framework into a GPU tensor's memory after TF has read that tensor once?

H200, TF 2.21, CuPy 14.2 (2026-12-03): host reads after a first host read return the first
copy (B, D, E, F print 1.0 twice); GPU ops, a GPU slice and DLPack see the write (C, E').
    PYTHONPATH=/tmp/site:/tmp/tfsite:src python3 scripts/tf_stale_repro.py
"""

from typing import Any

import numpy as np

from zerocopy.testing import values


def main() -> None:
    import cupy  # GPU frameworks: imported where the repro runs
    import tensorflow as tf

    def fresh() -> tuple[Any, Any]:
        """A TF GPU tensor [1..8] and a CuPy view of its memory; element 0 := -1 written."""
        with tf.device("/GPU:0"):
            t = tf.constant(np.arange(1, 9, dtype=np.float32))
        return t, cupy.from_dlpack(tf.experimental.dlpack.to_dlpack(t))

    def write(view: Any) -> None:
        view[0] = -1
        cupy.cuda.runtime.deviceSynchronize()

    t, c = fresh()
    write(c)
    print("A write, numpy:", t.numpy()[0])
    t, c = fresh()
    first = t.numpy()[0]
    write(c)
    print("B numpy, write, numpy:", first, t.numpy()[0])
    t, c = fresh()
    first = t.numpy()[0]
    write(c)
    with tf.device("/GPU:0"):
        print("C numpy, write, GPU identity:", first, tf.identity(t).numpy()[0],
              "GPU reduce_sum:", float(tf.reduce_sum(t)), "(34.0 if the write is seen)")
    t, c = fresh()
    with tf.device("/CPU:0"):
        first = tf.identity(t).numpy()[0]
    write(c)
    with tf.device("/CPU:0"):
        print("D CPU identity, write, CPU identity:", first, tf.identity(t).numpy()[0])
    t, c = fresh()
    first = t.numpy()[0]
    write(c)
    print("E numpy, write, np.asarray:", first, np.asarray(t)[0],
          "DLPack to CuPy:", float(cupy.from_dlpack(tf.experimental.dlpack.to_dlpack(t))[0]))
    print("E' t[0] (a GPU slice):", float(t[0]))
    t, c = fresh()
    first = values(t)[0]
    write(c)
    print("G zerocopy.testing.values, write, values:", first, values(t)[0])


if __name__ == "__main__":
    main()
