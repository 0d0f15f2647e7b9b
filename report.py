"""Report a sweep: ``python report.py multirun/<date>/<time> [--out DIR]``.

Reads every job's metrics.json (and failure.json) under the sweep folder and writes report.md (mean ± std
over seeds, runs per cell), report.json and report.csv (the same numbers) and fig3.png (the paper's Fig. 3
with error bars and the KOTE paper's KcELECTRA line) into the sweep folder, or ``--out``. A multirun of
train.py already rewrites them after every job; this rebuilds them, e.g. after copying a sweep elsewhere.
"""

import argparse

from emoreason.sweeps.report import write_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", help="a sweep folder, e.g. multirun/2026-11-28/15-02-11")
    parser.add_argument("--out", default=None, help="folder for the report files (default: the sweep folder)")
    args = parser.parse_args()
    try:
        paths = write_report(args.sweep_dir, args.out)
    except FileNotFoundError as exc:
        parser.error(str(exc))
    for path in paths.values():
        print(path)


if __name__ == "__main__":
    main()
