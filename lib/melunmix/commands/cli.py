"""The ``melunmix`` command.

    melunmix separate SONG... --model PATH --out DIR [--niter N] [--softmask]
    melunmix make-dataset --out DIR --train N --valid K --test M --duration S --seed X
    melunmix score ESTIMATES --data-root ROOT --out EVAL [--scorer fast|museval] [--jobs N]
                   [--shard I/N | --shard slurm | --aggregate]
    melunmix reproduce [--profile demo] [--data-root PATH] [--only 05 06] [--stand-in] [--notebooks-dir DIR]
    melunmix train [--profile demo] [--model M ...] [--seed S ...]   (also under torchrun)
    melunmix tune [--profile demo] [--storage URL|JOURNAL_FILE]      (one worker of a search)

Each subcommand parses its options and calls one library function with plain arguments;
the same functions are what the notebooks and tests call.

Where files go (``--results-dir``, the generated data, the cache) never depends on where the
package is installed: ``$MELUNMIX_RESULTS_DIR``, ``$MELUNMIX_DATA_DIR``,
``$MELUNMIX_CACHE_DIR``, else under ``$MELUNMIX_HOME``, else under the source checkout
holding the working directory, else under the working directory (:mod:`melunmix.base.config`).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from .. import __version__
from ..base.config import PROFILES_DIR
from ..base.files import FolderInUse
from ..base.markdown import markdown_table


def _profile_names() -> list[str]:
    """The profiles shipped with the package, for --help."""

    return sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))

def _cmd_separate(args: argparse.Namespace) -> int:
    from ..separation.separate_files import separate_files  # the command's module, loaded when the command runs

    report = separate_files(
        args.songs, args.model, args.out, niter=args.niter, softmask=args.softmask,
        progress=not args.no_progress, device=args.device, targets=args.targets, ext=args.ext,
        subtype=args.subtype,
    )
    failed = report.get("failed", {}) if isinstance(report, dict) else {}
    return 1 if failed else 0


def _cmd_make_dataset(args: argparse.Namespace) -> int:
    from ..synth import make_dataset  # the command's module, loaded when the command runs

    root = make_dataset(
        args.out, nb_train=args.train, nb_valid=args.valid, nb_test=args.test,
        duration=args.duration, seed=args.seed, progress=not args.no_progress,
    )
    print(f"dataset ready: {root}")
    return 0


def _cmd_reproduce(args: argparse.Namespace) -> int:
    # the command's module, loaded when the command runs
    from ..study.pipeline import NotebookFailed, RunInterrupted, reproduce

    try:
        runs = reproduce(args.profile, data_root=args.data_root, results_dir=args.results_dir, only=args.only,
                         stand_in=args.stand_in, notebooks_dir=args.notebooks_dir, device=args.device,
                         **({"kernel_name": args.kernel} if args.kernel else {}))
    except NotebookFailed as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except FolderInUse as err:
        print(f"melunmix reproduce: error: {err}", file=sys.stderr)
        return 1
    except RunInterrupted as err:  # SIGINT or SIGTERM: where the run stopped
        print(f"\nmelunmix reproduce: {err}", file=sys.stderr)  # a fresh line: a progress bar may be half drawn
        return err.exit_code
    total = sum(run.seconds for run in runs)
    print(f"study '{args.profile}' done in {total:.0f} s; results in {runs[-1].output.parent.parent}" if runs else "nothing to run")
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    # the command's module, loaded when the command runs
    from .score import TABLES_DIR_NAME, parse_shard, score_folder

    shard = parse_shard(args.shard) if args.shard else None
    table = score_folder(args.estimates, args.data_root, args.out, scorer=args.scorer, jobs=args.jobs,
                         subset=args.subset, progress=not args.no_progress, overwrite=args.overwrite,
                         shard=shard, aggregate_only=args.aggregate, method=args.method, tracks=args.tracks,
                         warn=lambda line: print(f"melunmix score: warning: {line}", file=sys.stderr))
    if table is None:  # one shard: the tables wait for every shard (score --aggregate)
        print(f"shard {shard[0]}/{shard[1]}: museval JSON of its tracks in {args.out / args.subset}; "
              "when every shard is done, run the same command with --aggregate instead of --shard")
        return 0
    print(markdown_table(table, floatfmt=".2f"))
    print(f"museval JSON of every track in {args.out / args.subset}; tables in {args.out / TABLES_DIR_NAME}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from ..study.profile_commands import train_profile# the command's module, loaded when the command runs

    from ..training.distributed import environment_rank  # torch.distributed, only under torchrun

    try:
        results = train_profile(args.profile, data_root=args.data_root, results_dir=args.results_dir,
                                models=args.model, seeds=args.seed, stand_in=args.stand_in,
                                progress=False if args.no_progress else None, device=args.device)
    except RuntimeError as err:
        lost = _lost_peer(err)
        if lost is None:
            raise
        print(f"melunmix train: error: rank {environment_rank()} lost the other ranks ({lost}): one of them "
              "ended or was killed; rerun the same command to resume from the last checkpoint", file=sys.stderr)
        return 1

    if environment_rank() == 0:  # under torchrun, one summary (rank 0's)
        for method, result in results.items():
            print(f"{method}: {result.last_epoch} epochs, best epoch {result.best_epoch} (valid loss "
                  f"{result.best_valid_loss:.5g}), {result.stop_reason or 'not finished'}; {result.out_dir}")
    return 0


#: What gloo and NCCL say when a peer process is gone.
_LOST_PEER = ("Connection closed by peer", "Connection reset by peer", "Broken pipe", "Connection refused",
              "NCCL communicator was aborted", "remote process exited")


def _lost_peer(err: BaseException) -> str | None:
    """The line of a collective's error that says a peer is gone (under torchrun), else None."""
    import os

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    text = str(err)
    for line in text.splitlines():
        if any(marker in line for marker in _LOST_PEER):
            return line.strip()[:200]
    return None


def _cmd_tune(args: argparse.Namespace) -> int:
    from ..study.profile_commands import tune_profile# the command's module, loaded when the command runs

    results = tune_profile(args.profile, data_root=args.data_root, results_dir=args.results_dir,
                           storage=args.storage, stand_in=args.stand_in,
                           progress=False if args.no_progress else None, device=args.device)
    for model, result in results.items():
        shown = ", ".join(f"{k}={v:.4g}" for k, v in result.best_params.items())
        print(f"{model}: best trial trials/trial_{result.best_trial:03d} ({shown}), valid loss {result.best_valid_loss:.5g}; "
              f"{result.nb_trials_run} trial(s) run by this worker; {result.best_params_json}")
    return 0


DEVICE_HELP = ("cpu, cuda or cuda:N for training and separation (default: $MELUNMIX_DEVICE when set, else the "
               "profile's train.device, 'auto': cuda when available, else cpu)")
RESULTS_DIR_HELP = ("parent of the run folder (default: $MELUNMIX_RESULTS_DIR, else results/ of the checkout "
                    "or of the working directory)")


def _add_run_options(p: argparse.ArgumentParser) -> None:
    """The options ``train`` and ``tune`` share: where the data and the results are."""
    p.add_argument("--data-root", type=Path, default=None, help="MUSDB18 or MUSDB18-HQ root")
    p.add_argument("--results-dir", type=Path, default=None, help=RESULTS_DIR_HELP)
    p.add_argument("--stand-in", action="store_true", help="a MUSDB18 profile on the generated dataset")
    p.add_argument("--device", default=None, help=DEVICE_HELP)
    p.add_argument("--no-progress", action="store_true")


def _add_separate_command(sub) -> None:
    p = sub.add_parser("separate", help="separate songs into vocals and accompaniment")
    p.add_argument("songs", nargs="+", type=Path,
                   help="audio files (WAV, FLAC, OGG, MP3; with ffmpeg also .m4a, .stem.mp4 and others) or "
                        "folders of them")
    p.add_argument("--model", required=True, type=Path, action="append",
                   help="a melunmix model file (.pth, from training) or a folder of them, an Open-Unmix model "
                        "folder (<target>.json + <target>.pth, as its train.py writes) or an Open-Unmix "
                        "weights file (e.g. vocals-b62c91ce.pth); repeat for several targets")
    p.add_argument("--out", required=True, type=Path, help="output folder; one sub-folder per song")
    p.add_argument("--targets", nargs="+", default=None, metavar="TARGET",
                   help="separate only these of the models' targets (default: all; the accompaniment, "
                        "the mixture minus them, is always written)")
    p.add_argument("--ext", choices=["wav", "flac"], default="wav", help="output file type (default wav)")
    p.add_argument("--subtype", choices=["FLOAT", "PCM_16", "PCM_24"], default=None,
                   help="sample format (default: FLOAT for wav, PCM_24 for flac)")
    p.add_argument("--device", default=None,
                   help="cpu, cuda or cuda:N (default: cuda when available, else cpu)")
    p.add_argument("--niter", type=int, default=1, help="Wiener EM iterations (0: masks only; default 1)")
    p.add_argument("--softmask", action="store_true", help="initialise Wiener with soft masks")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (one line per song)")
    p.set_defaults(func=_cmd_separate)


def _add_make_dataset_command(sub) -> None:
    p = sub.add_parser("make-dataset", help="generate the built-in MUSDB18-format dataset")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--train", type=int, default=8, help="training songs (validation songs included)")
    p.add_argument("--valid", type=int, default=2, help="of the training songs, how many form the validation split")
    p.add_argument("--test", type=int, default=4, help="test songs")
    p.add_argument("--duration", type=float, default=30.0, help="seconds per song")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cmd_make_dataset)


def _add_score_command(sub) -> None:
    p = sub.add_parser("score", help="score estimates of any system with BSS Eval v4 (museval's numbers)")
    p.add_argument("estimates", type=Path,
                   help="folder of <track>/<target>.wav, or museval's <estimates>/test/<track>/<target>.wav: "
                        "vocals and accompaniment (or no_vocals), drums, bass, other, whichever are there "
                        "(at least the pair or two stems); tracks without a folder are skipped")
    p.add_argument("--method", default=None, help="the method's name in the tables (default: the --out folder's name)")
    p.add_argument("--tracks", nargs="+", default=None, metavar="TRACK",
                   help="score only these tracks (default: every track with estimates)")
    p.add_argument("--data-root", required=True, type=Path, help="MUSDB18 / MUSDB18-HQ root with the true stems")
    p.add_argument("--out", required=True, type=Path, help="receives <out>/<subset>/<track>.json (museval JSON)")
    p.add_argument("--scorer", choices=("fast", "museval"), default="fast",
                   help="fast (melunmix.dsp.bsseval, default) or museval itself; the same numbers")
    p.add_argument("--jobs", type=int, default=None, help="worker processes (default: all cores)")
    p.add_argument("--subset", choices=("test", "train"), default="test")
    p.add_argument("--overwrite", action="store_true", help="rescore tracks already scored in --out")
    p.add_argument("--no-progress", action="store_true")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--shard", metavar="I/N", help="score only every N-th track from the I-th (0 <= I < N, "
                       "tracks sorted by name); 'slurm': I and N from the Slurm array job's variables")
    group.add_argument("--aggregate", action="store_true", help="score nothing: write the tables from the "
                       "shards' JSON, refusing while a track is missing")
    p.set_defaults(func=_cmd_score)


def _add_train_command(sub) -> None:
    p = sub.add_parser("train", help="train the profile's models (several processes under torchrun)")
    p.add_argument("--profile", default="demo", help=f"{', '.join(_profile_names())} or a YAML file (default demo)")
    p.add_argument("--model", action="append", default=None, help="train only this model (repeatable)")
    p.add_argument("--seed", action="append", type=int, default=None, help="train only this seed (repeatable)")
    _add_run_options(p)
    p.set_defaults(func=_cmd_train)


def _add_tune_command(sub) -> None:
    p = sub.add_parser("tune", help="one worker of the profile's tuning search (start several on a shared storage)")
    p.add_argument("--profile", default="demo", help=f"{', '.join(_profile_names())} or a YAML file (default demo)")
    p.add_argument("--storage", default=None, help="database URL or journal file shared by the workers "
                   "(default: the profile's tune.storage, else the search folder's own SQLite file)")
    _add_run_options(p)
    p.set_defaults(func=_cmd_tune)


def _add_reproduce_command(sub) -> None:
    p = sub.add_parser("reproduce", help="run the study's notebooks with papermill")
    p.add_argument("--profile", default="demo", help=f"{', '.join(_profile_names())} or a YAML file (default demo)")
    p.add_argument("--data-root", type=Path, default=None, help="MUSDB18 or MUSDB18-HQ root (default: "
                   "$MUSDB_ROOT, $MUSDB_PATH, else the generated dataset)")
    p.add_argument("--results-dir", type=Path, default=None, help=RESULTS_DIR_HELP)
    p.add_argument("--only", nargs="+", default=None, metavar="NN", help="run only these notebooks (e.g. 05 06)")
    p.add_argument("--stand-in", action="store_true", help="run a MUSDB18 profile (poster, umx) on the "
                   "generated dataset when no MUSDB18 root is given; the results say so")
    p.add_argument("--notebooks-dir", type=Path, default=None, help="folder of the numbered notebooks "
                   "(default: notebooks/ of the source checkout holding the working directory)")
    p.add_argument("--device", default=None, help=DEVICE_HELP)
    p.add_argument("--kernel", default=None, help="Jupyter kernel that runs the notebooks (default: the one "
                   "`make setup` registers; any kernel of an environment with melunmix installed)")
    p.set_defaults(func=_cmd_reproduce)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="melunmix", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"melunmix {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_separate_command(sub)
    _add_make_dataset_command(sub)
    _add_score_command(sub)
    _add_train_command(sub)
    _add_tune_command(sub)
    _add_reproduce_command(sub)
    return parser


#: Commands that turn SIGTERM into the Ctrl-C path. Not ``train`` and ``tune``: under
#: torchrun (and a tuning search's other workers) SIGTERM must end a process at once,
#: not after a blocking collective call returns.
SIGTERM_AS_CTRL_C = ("separate", "make-dataset", "score", "reproduce")


class _Terminated(KeyboardInterrupt):
    """SIGTERM (``timeout``, cluster schedulers) handled as Ctrl-C is: clean-up, one line."""

    exit_code = 128 + int(signal.SIGTERM)


def _raise_terminated(signum, frame) -> None:
    raise _Terminated(f"terminated ({signal.Signals(signum).name}); finished work is kept: rerun the same "
                      "command to resume")


#: What to do about the operating system's refusals a user can fix (errno name -> advice).
_OS_ADVICE = {
    "EROFS": "the file system is read-only: choose an output folder on a writable disk (--out, "
             "--results-dir, or $MELUNMIX_HOME)",
    "EACCES": "no permission: choose a folder you can write (--out, --results-dir, or $MELUNMIX_HOME)",
    "EPERM": "no permission: choose a folder you can write (--out, --results-dir, or $MELUNMIX_HOME)",
    "ENOSPC": "the disk is full: free space (finished work is kept) and rerun the same command to resume",
    "EDQUOT": "the disk quota is used up: free space and rerun the same command to resume",
    "ENOTDIR": "a path that should be a folder is a file: give another path",
}


def _os_error_line(err: OSError) -> str:
    """One line for an operating-system error: what failed, on which file, and what to do."""
    import errno as errno_names

    name = errno_names.errorcode.get(err.errno or 0, "")
    reason = err.strerror or str(err)
    path = err.filename if getattr(err, "filename", None) else None
    advice = _OS_ADVICE.get(name)
    if advice is None:
        where = f" ({path})" if path and str(path) not in str(err) else ""
        return f"{err}{where}"
    return f"{path}: {reason}; {advice}" if path else f"{reason}; {advice}"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    previous = None
    if (args.command in SIGTERM_AS_CTRL_C and threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGTERM) is not None):
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError) as err:
        # Bad input: one clear line naming the file or argument, no traceback.
        print(f"melunmix {args.command}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # e.g. a full disk or an output path that is a file
        print(f"melunmix {args.command}: error: {_os_error_line(err)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as err:
        message = str(err) or "interrupted; finished work is kept: rerun the same command to resume"
        print(f"\nmelunmix {args.command}: {message}", file=sys.stderr)
        return getattr(err, "exit_code", 128 + int(signal.SIGINT))
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
