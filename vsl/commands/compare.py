"""Head-to-head of the two families on one dataset's test set: every row is scored on the same
tokens, as a tagger (accuracy) where its labels are tags and as a clustering (many-to-one,
one-to-one, V-measure) always.

    scripts/compare.py --data twitter
    scripts/compare.py --data ud/English-EWT --seed 1 --reuse bigru=runs/final/ewt_baseline_s0

Rows: the BiGRU baseline; VSL-GG-Hier on labeled data only and with unlabeled data; the neural
HMM trained without labels (one state per gold tag, on the train text plus the dataset's raw
text); the semi-supervised neural HMM on the VSL split of the same seed; and the y space of
VSL-GG-Hier + unlabeled clustered by k-means into as many clusters as tags. A row's model is the
run folder RUNS/<row> (default runs/compare/<data>-s<seed>/<row>); a finished run there is
reused and a stopped one continued, so the same command carries on after Ctrl-C or SIGTERM
(which save the running row and exit with status 130), and --reuse ROW=DIR points a row at any
run (one stopped early is marked so in the table). Missing runs are trained with the package
defaults for the dataset (override with --set ROW.KEY=VALUE, e.g. --set hier.max_steps=5000).

Writes OUT.json and OUT.md (default results/compare_<data>): the table, and per row the run
folder, its command, seed and commit.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from hmm.config import HmmConfig
from hmm.recipe import load_trained as load_hmm
from hmm.recipe import run as run_hmm
from hmm.train import TrainingStopped
from vsl.analysis import cluster_tokens, latent_vectors
from vsl.checkpoint import RESULTS, atomic_write_bytes, atomic_write_json, load_metadata
from vsl.commands import HelpFormatter
from vsl.config import RunConfig
from vsl.data.batching import Collator
from vsl.data.registry import load_dataset, resolve_dataset
from vsl.data.vocab import Vocabulary
from vsl.errors import VslError
from vsl.recipe import load_run, load_trained
from vsl.recipe import run as run_vsl
from vsl.metrics import accuracy, cluster_scores
from vsl.provenance import describe_code, git_commit, run_source
from vsl.optimization import StopRequest
from vsl.run_folder import has_training_state, resume_settings, run_finished
from vsl.write_up import markdown_table

ROWS = {  # row -> (description, family, settings)
    "bigru": ("BiGRU baseline", "vsl", {"latent": "none"}),
    "hier": ("VSL-GG-Hier, labeled only", "vsl", {"latent": "hier", "unlabeled": "none"}),
    "hier-unlabeled": ("VSL-GG-Hier + unlabeled", "vsl", {"latent": "hier"}),
    "nhmm": ("Neural HMM, no labels", "hmm", {"model": "nhmm", "unlabeled": "auto"}),
    "nhmm-semi": ("Neural HMM, semi-supervised", "hmm", {"model": "nhmm", "semi_supervised": True, "unlabeled": "auto"}),
}
CLUSTERED = "hier-unlabeled"  # the VSL run whose y space is clustered


def parse_settings(pairs: list[str]) -> dict[str, dict]:
    settings: dict[str, dict] = {row: {} for row in ROWS}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        row, dot, name = key.partition(".")
        if not sep or not dot or row not in ROWS:
            raise VslError(f"--set takes ROW.KEY=VALUE with ROW one of {', '.join(ROWS)}; got {pair!r}")
        settings[row][name] = yaml.safe_load(value)
    return settings


def ensure_run(row: str, folder: Path, dataset: dict, extra: dict, n_tags: int, should_stop) -> None:
    """Train the row's model into ``folder`` unless it already finished there, continuing it
    from its checkpoint (with its saved settings) when an earlier comparison stopped it;
    ``dataset`` holds the data, data_root, format and seed settings. A stop request raises
    :class:`~hmm.train.TrainingStopped` once the run's state is saved."""
    if run_finished(folder):
        return
    _, family, settings = ROWS[row]
    resume = has_training_state(folder)
    settings_type, train = (RunConfig, run_vsl) if family == "vsl" else (HmmConfig, run_hmm)
    if resume:
        config = resume_settings(folder, settings_type, family)
    else:
        values = {**dataset, **settings, **extra}
        if family == "hmm":
            values.setdefault("states", n_tags)
        config = settings_type.from_dict(values)
    print(f"{'continuing' if resume else 'training'} {row} in {folder}", file=sys.stderr)
    results = train(config, folder, progress=False, command=f"scripts/compare.py row {row}", resume=resume,
                    should_stop=should_stop)
    if family == "vsl" and results["interrupted"]:
        raise TrainingStopped(f"{row} stopped at step {results['steps']}", saved=True)


def score_row(folder: Path, semi_supervised_hmm: bool, gold, words) -> dict:
    family = load_metadata(folder).family
    labels = (load_trained if family == "vsl" else load_hmm)(folder).tag(words)
    scores = cluster_scores(gold, labels)
    if family == "vsl":
        scores["accuracy"] = accuracy(gold, labels)
    elif semi_supervised_hmm:  # state k is tag k
        tags = Vocabulary.from_dict(load_metadata(folder).vocabs["tags"])
        scores["accuracy"] = accuracy(gold, [tags.decode(int(s) for s in row) for row in labels])
    return scores


def source_of(folder: Path) -> dict:
    return run_source(folder, json.loads((folder / RESULTS).read_text()))


def markdown(data: str, table: list[dict], commit: str | None, command: str) -> str:
    def cell(value):
        return "—" if value is None else f"{100 * value:.1f}"

    cells = [[row["model"] + (" (stopped early)" if row["source"]["interrupted"] else ""),
              *(cell(row["scores"].get(key)) for key in ("accuracy", "m1", "one_to_one", "one_to_one_greedy", "vm")),
              f"`{row['source']['run']}`"] for row in table]
    lines = [f"# Head-to-head on {data} (test set)", "",
             f"`{command}` at commit `{commit}`. Scores in %, all on the same test tokens; accuracy only "
             "where a row's labels are tags.", "",
             *markdown_table(["model", "accuracy", "M-1", "1-1", "1-1 greedy", "VM", "run"], cells)]
    lines += ["", "Commands of the runs:", ""]
    lines += [f"- {row['model']}: `{row['source']['command']}` (seed {row['source']['seed']}, "
              f"{describe_code(row['source'])})" for row in table]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--data-root")
    parser.add_argument("--format", help="format of a folder dataset")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", help="folder of the row runs (default runs/compare/<data>-s<seed>)")
    parser.add_argument("--reuse", nargs="*", default=[], metavar="ROW=DIR", help="take a row's model from DIR")
    parser.add_argument("--set", nargs="*", default=[], metavar="ROW.KEY=VALUE", help="settings of missing runs")
    parser.add_argument("--out", help="output path without extension (default results/compare_<data>)")
    args = parser.parse_args(argv)
    command = " ".join(["scripts/compare.py", *(sys.argv[1:] if argv is None else argv)])
    name = args.data.replace("/", "_")
    runs = Path(args.runs or f"runs/compare/{name}-s{args.seed}")
    try:
        folders = {row: runs / row for row in ROWS}
        for pair in args.reuse:
            row, sep, folder = pair.partition("=")
            if not sep or row not in ROWS:
                raise VslError(f"--reuse takes ROW=DIR with ROW one of {', '.join(ROWS)}; got {pair!r}")
            folders[row] = Path(folder)
        extra = parse_settings(args.set)
        corpus = load_dataset(resolve_dataset(args.data, args.data_root, args.format), with_raw=False)
        dataset = {"data": args.data, "data_root": args.data_root, "format": args.format, "seed": args.seed}
        gold = [s.tags for s in corpus.test]
        words = [s.words for s in corpus.test]
        n_tags = len({t for tags in gold for t in tags})
        table = []
        stop = StopRequest().install()
        for row, (description, _, settings) in ROWS.items():
            ensure_run(row, folders[row], dataset, extra[row], n_tags, stop)
            scores = score_row(folders[row], bool(settings.get("semi_supervised")), gold, words)
            table.append({"row": row, "model": description, "scores": scores, "source": source_of(folders[row])})
        model, vocabs, _ = load_run(folders[CLUSTERED])
        vectors = latent_vectors(model, corpus.test, Collator(vocabs), "y")
        clusters = cluster_tokens(vectors, n_tags, [len(s) for s in corpus.test], seed=args.seed)
        table.append({"row": f"{CLUSTERED}-y-kmeans", "model": f"{ROWS[CLUSTERED][0]}: y clustered by k-means",
                      "scores": cluster_scores(gold, clusters), "source": source_of(folders[CLUSTERED])})
    except VslError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (TrainingStopped, KeyboardInterrupt) as stopped:
        print(f"{str(stopped) or 'interrupted'}; the same command continues the comparison", file=sys.stderr)
        return StopRequest.EXIT_STATUS
    out = Path(args.out or f"results/compare_{name}")
    commit = git_commit()
    atomic_write_json(out.with_suffix(".json"), {"data": args.data, "seed": args.seed, "test_tokens":
                                                 sum(len(g) for g in gold), "tags": n_tags, "commit": commit,
                                                 "command": command, "rows": table})
    atomic_write_bytes(out.with_suffix(".md"), markdown(args.data, table, commit, command).encode("utf-8"))
    print(out.with_suffix(".md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
