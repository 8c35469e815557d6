"""The main job in a few minutes: train the BiGRU baseline and VSL-GG-Hier (with the raw tweets
as unlabeled data) on Twitter POS and print their dev/test accuracy side by side.

Fetches the freely licensed datasets into ./data first when no data root is found.
    scripts/demo.py [--max-steps 1500] [--out runs/demo]   (replaces the runs of an earlier demo there)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from vsl.commands import HelpFormatter
from vsl.config import RunConfig
from vsl.data.registry import find_data_root
from vsl.errors import DatasetNotFoundError
from vsl.recipe import run

MODELS = {"BiGRU baseline": {"latent": "none"}, "VSL-GG-Hier": {"latent": "hier"}}


def ensure_data() -> None:
    try:
        find_data_root()
    except DatasetNotFoundError:
        print("no data root found: fetching the free datasets into ./data", flush=True)
        subprocess.run([sys.executable, "-m", "vsl.commands.fetch_data", "--only", "twitter", "twitter_unlabeled"],
                       check=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--max-steps", type=int, default=1500)
    parser.add_argument("--out", default="runs/demo")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", default="twitter", help="dataset name or folder (default twitter)")
    parser.add_argument("--format", help="format of a folder dataset")
    args = parser.parse_args(argv)
    ensure_data()
    rows = []
    for name, settings in MODELS.items():
        config = RunConfig(data=args.data, format=args.format, seed=args.seed, max_steps=args.max_steps,
                           eval_every=min(250, args.max_steps), **settings)
        print(f"training {name} on {args.data} for {args.max_steps} steps", flush=True)
        results = run(config, Path(args.out) / settings["latent"], overwrite=True)
        rows.append((name, results["dev"]["accuracy"], results["test"]["accuracy"], results["best_step"]))
    print(f"\n{'model':<20} {'dev acc':>8} {'test acc':>9} {'best step':>10}")
    for name, dev, test, step in rows:
        print(f"{name:<20} {100 * dev:>8.2f} {100 * test:>9.2f} {step:>10}")
    if args.data == "twitter":
        print("\n(train oct27.traindev, dev oct27.test, test daily547; full runs: see results/)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
