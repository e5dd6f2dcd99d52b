"""Cost of step 1's no-LOCO statistic (λGC without LOCO) beside a block's level-0 ridge.

Times, in one process on one random block of ``--samples`` x ``--bsize``
standardised genotypes and two traits (one with every 7th value missing),
:func:`crosscohort.tre.association.wgr.marginal_chi2` and the level-0 K-fold
ridge that step 1 runs on every block anyway; best of ``--repeat``.
Run with ``OPENBLAS_NUM_THREADS=1`` for one thread.

usage: python benchmarks/bench_wgr_lambda.py [--samples 5000 --bsize 1000 --repeat 3]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from crosscohort.tre.association import _ridge as R
from crosscohort.tre.association.wgr import marginal_chi2


def _best(f, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=5000)
    ap.add_argument("--bsize", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    n, m = args.samples, args.bsize
    g = rng.normal(size=(n, m))
    y = rng.normal(size=(n, 2))
    masks = np.ones((n, 2), dtype=bool)
    masks[::7, 1] = False
    lam = R.level0_shrinkage(R.DEFAULT_H2, 100 * m)
    sizes = R.fold_sizes(n, 5)
    t_stat = _best(lambda: marginal_chi2(g, y, masks), args.repeat)
    t_l0 = _best(lambda: R.level0_kfold(g, y, sizes, lam), args.repeat)
    print(json.dumps({"samples": n, "bsize": m, "marginal_chi2_s": round(t_stat, 4),
                      "level0_kfold_s": round(t_l0, 4), "ratio": round(t_stat / t_l0, 4)}))


if __name__ == "__main__":
    main()
