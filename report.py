"""Report a sweep: ``python report.py multirun/<date>/<time> [--out DIR] [--resamples N]``.

Reads every job's metrics.json (and failure.json), floors.json and test_predictions.jsonl under the sweep
folder and writes report.md (a verdict per pair of arms, mean ± std over seeds, the KOTE protocol, the
reference floors, paired differences with 95% intervals and p-values), report.json and report.csv (the same
numbers), fig3.png (the paper's Fig. 3 with error bars, the KOTE paper's KcELECTRA line and the floors) and
paired.png (each paired difference with its interval) into the sweep folder, or ``--out``. A multirun of
train.py rewrites all but the paired statistics after every job, and keeps the ones this wrote last (marked
as computed on fewer jobs once more have finished); this computes them (a paired bootstrap over test
comments and seeds, seeded: the same command gives the same numbers).
"""

import argparse

from emoreason.cli import guard
from emoreason.sweeps.summary import DEFAULT_RESAMPLES, write_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", help="a sweep folder, e.g. multirun/2026-11-28/15-02-11")
    parser.add_argument("--out", default=None, help="folder for the report files (default: the sweep folder)")
    parser.add_argument(
        "--resamples",
        type=int,
        default=DEFAULT_RESAMPLES,
        help=f"paired-bootstrap replicates (default {DEFAULT_RESAMPLES}; 0: no paired statistics)",
    )
    parser.add_argument(
        "--bootstrap-seed", type=int, default=0, help="seed of the bootstrap draws (default 0)"
    )
    args = parser.parse_args()
    if args.resamples < 0:
        parser.error(f"--resamples must be 0 or more, got {args.resamples}")
    paths = write_report(
        args.sweep_dir, args.out, resamples=args.resamples, bootstrap_seed=args.bootstrap_seed
    )
    for path in paths.values():
        print(path)


if __name__ == "__main__":
    guard(main)
