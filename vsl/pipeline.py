"""One run of either model family, from settings to a run folder.

:func:`run_in_folder` does what every run does whatever it trains: it joins the process group
(one process, or one per rank under ``torchrun``), claims the run folder (refusing one that
holds another run unless resuming or overwriting, or that another process is writing), notes
the code it runs, sets the CPU threads, lets the family train and score (a ``train_and_score``
function: :func:`vsl.recipe.train_and_score` for the taggers,
:func:`hmm.recipe.train_and_score` for the HMMs), and writes ``results.json``: the
family's scores with the settings, the code of every segment of the run, the command and how
far the data-parallel replicas drifted apart.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, NamedTuple

from vsl.checkpoint import RESULTS, RunMetadata, atomic_write_json, save_metadata
from vsl.distributed import Cluster, process_group
from vsl.provenance import code_version, record_segment
from vsl.run_folder import claim_run_folder
from vsl.runtime import configure_cpu


@dataclass
class RunContext:
    """Where and how a family's run trains: its folder, the command that asked for it, whether
    it resumes, the stop request, the process group and the code it started with."""

    folder: Path
    progress: bool
    command: str | None
    resume: bool
    should_stop: Callable[[], bool] | None
    cluster: Cluster
    version: dict
    segments: list[dict] = field(default_factory=list)

    def begin(self, metadata: RunMetadata, device: str) -> None:
        """Save the run's settings and vocabularies and add this process to its segments
        (rank 0 only); call once the data and the model are ready, before training."""
        if self.cluster.main:
            save_metadata(self.folder, metadata)
            self.segments = record_segment(self.folder, self.version, self.command, device, self.resume)


class Outcome(NamedTuple):
    """What a family's ``train_and_score`` returns: its results (None on the ranks that do not
    report), the trained model and the settings the run ended with."""

    results: dict | None
    model: object
    config: object


def run_in_folder(train_and_score: Callable[[object, RunContext], Outcome], config, out_dir: str | Path,
                  progress: bool = True, command: str | None = None, resume: bool = False,
                  should_stop: Callable[[], bool] | None = None, overwrite: bool = False,
                  check_cluster: Callable[[Cluster], None] | None = None) -> dict | None:
    """Run ``train_and_score(config, context)`` in ``out_dir`` and write its results (see the
    module docstring); ``check_cluster`` refuses a process group the family cannot train in.
    Returns the results on every rank that reports them, None on the others."""
    with process_group(config.device) as cluster:
        if check_cluster is not None:
            check_cluster(cluster)
        with claim_run_folder(out_dir, resume, overwrite) if cluster.main else nullcontext():
            context = RunContext(Path(out_dir), progress and cluster.main, command, resume, should_stop, cluster,
                                 code_version())  # the code as it was when the run started
            configure_cpu(config.threads)
            outcome = train_and_score(config, context)
            spread = cluster.replica_spread(outcome.model)
            if outcome.results is None:
                return None
            results = {**outcome.results, "world_size": cluster.world, "replica_spread": spread,
                       **context.version, "segments": context.segments, "command": command,
                       "config": outcome.config.to_dict()}
            if cluster.main:
                atomic_write_json(Path(out_dir) / RESULTS, results)
            return results
