"""Planning a suite: every run resolved, and every run's input checked, before any kernel starts.

:func:`plan_suite` resolves every run of every params file once
(:func:`swin_gao_lib.config.params.resolve`), then makes for each run the
checks ``swin-gao train`` makes before it starts
(:mod:`swin_gao_lib.training.preflight`): its output folder (an unfinished
run of another config, files the kit did not write, a folder another process
is writing), its data (every ``dir:`` or ``sample`` source is read and
parsed once, each distinct split made once), a training split smaller than a
batch, and the free space of the suite's file system. It reports every
problem it finds at once (:class:`SuiteProblems`), before anything is
written, and imports no TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from swin_gao_lib.config import MAX_RUN_NAME, RunConfig
from swin_gao_lib.config.examples import missing_params_hint
from swin_gao_lib.config.params import resolve
from swin_gao_lib.config.paths import check_path, what_is
from swin_gao_lib.data.sources import check_source, expected_train_images
from swin_gao_lib.errors import InputError, shown_path
from swin_gao_lib.records import LOCK, RunFolder, config_differences, run_dir_of
from swin_gao_lib.training.preflight import check_train_split
from swin_gao_lib.training.space import check_space, run_bytes, used_bytes


@dataclass(frozen=True)
class Plan:
    """One run of a suite: its params file, its resolved config, its folder."""

    params: Path
    config: RunConfig
    run_dir: Path
    seed_rank: int = 0

    @property
    def epochs(self) -> int:
        return self.config.epochs

    @property
    def images_per_epoch(self) -> int:
        """Training images per epoch, without loading the data (exact for sample and keras)."""
        c = self.config
        return expected_train_images(c.dataset, c.source, c.validation_split,
                                     c.max_train_samples)

    @property
    def cost(self) -> int:
        """Expected work: training images per epoch x epochs (what the progress bar counts)."""
        return self.epochs * self.images_per_epoch


class SuiteProblems(InputError):
    """Several problems found while planning a suite; each is one line of the message."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(f"{len(problems)} problems found before any run started; nothing was "
                         "run:\n" + "\n".join(f"  {p}" for p in problems))


def _raise_all(problems: list[InputError]) -> None:
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise SuiteProblems([str(p) for p in problems])


def _named(where: Path, exc: InputError) -> InputError:
    return type(exc)(f"{where}: {exc}")


def held_by(folder: RunFolder) -> str | None:
    """The pid of another process writing ``folder`` right now (it holds its lock), or None."""
    import fcntl

    path = folder.path / LOCK
    if not path.is_file():
        return None
    try:
        with open(path, "r") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                return handle.read().strip() or "?"
            fcntl.flock(handle, fcntl.LOCK_UN)
    except OSError:
        return None
    return None


def suite_inputs(params: str | Path, output: str | Path | None = None
                 ) -> tuple[list[Path], Path, str]:
    """A suite's params files, its output folder and its name, from ``run-all``'s arguments.

    Every executor starts here, before it takes the suite's lock (which makes
    the output folder). ``params`` is a params file or a folder of ``*.yaml``
    files; ``output`` defaults to ``outputs/<its name>``. An empty value (an
    unset shell variable, which would mean the current folder), a control
    character, a name or path too long, or a path that is neither file nor
    folder (a symbolic link loop, a FIFO) is refused in one line.

    Raises:
        InputError: naming ``params`` or ``--output`` and the fix.
    """
    check_path(str(params), "params", "params folder or file")
    path = Path(params)
    kind = what_is(path)
    if kind == "does not exist":
        raise InputError(f"{shown_path(path)}: no such params folder or file"
                         f"{missing_params_hint(path)}")
    if kind not in ("file", "folder"):
        raise InputError(f"params: {shown_path(path)} {kind}")
    files = [path] if kind == "file" else sorted(path.glob("*.yaml"))
    if not files:
        raise InputError(f"{path}: no *.yaml params files found")
    name = path.stem if kind == "file" else path.name
    if output is None:
        output = Path("outputs") / name
    # room for <run_name>/checkpoint/<its longest file> below the suite's folder
    check_path(str(output), "--output", room=MAX_RUN_NAME + 128, below="the runs' folders")
    output = Path(output)
    kind = what_is(output)
    if kind == "file":
        raise InputError(f"--output {output} is a file; give a folder for the suite's runs")
    if kind not in ("folder", "does not exist"):
        raise InputError(f"--output {shown_path(output)} {kind}")
    return files, output, name


def plan_suite(files: list[Path], output: Path, force: bool = False,
               check_data: bool = True) -> list[Plan]:
    """Expand and validate every run of ``files``, and check its input, before any starts.

    A typo in the last file stops the batch at once instead of after hours:
    every point is resolved, every run folder is checked (an unfinished run of
    another config, files the kit did not write, or a folder another process
    is writing are refused; :meth:`RunFolder.plan`), every data source is read
    (``check_data``: not for a cluster of your own, whose workers read the
    data, nor for ``source: keras``, which would import Keras), every training
    split is checked against its batch, and the free space against what the
    runs will write. Runs are ordered seed by seed (all configurations at the
    first seed, then at the second...), so a study stopped early still holds
    whole replicates.

    Raises:
        InputError: the one problem found, or :class:`SuiteProblems` listing
            every problem when there are several.
    """
    plans: list[Plan] = []
    problems: list[InputError] = []
    for f in files:
        try:
            for run in resolve(f, {"output_dir": str(output)}):
                plans.append(Plan(f, run.config, run_dir_of(run.config), run.seed_rank))
        except InputError as exc:
            problems.append(_named(f, exc))
    _raise_all(problems)
    names = [p.run_dir.name for p in plans]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise InputError(f"several runs of this suite are named {dup}; set distinct run_name "
                         "values (or file names)")
    for p in plans:
        try:
            _check_folder(p, force)
        except InputError as exc:
            problems.append(_named(p.params, exc))
    if check_data:
        problems += _check_data(plans)
    _raise_all(problems)
    _check_suite_space(plans, output, force)
    return sorted(plans, key=lambda p: p.seed_rank)  # stable: file order within a seed


def _check_folder(p: Plan, force: bool) -> None:
    folder = RunFolder(p.run_dir)
    holder = held_by(folder)
    if holder is not None:
        raise InputError(f"output: {folder.path} is being written by another process (pid "
                         f"{holder}); wait for it to finish, or stop it")
    if folder.complete and not force:  # skipped, but only if it is this very run
        differs = config_differences(folder.recorded_config(), p.config)
        if differs:
            raise InputError(
                f"output: {folder.path} holds a complete run of a different config (it "
                f"differs in {', '.join(differs)}); use another --output, or --force to "
                "run it again with the config as it is now")
    elif not (folder.diverged and not force):  # a diverged run is listed, not re-run
        folder.plan(p.config, overwrite=force)


def _check_data(plans: list[Plan]) -> list[InputError]:
    """Read every source the suite uses once and make every distinct split once.

    A corrupt or truncated file is found here, not in a kernel minutes later.
    ``keras`` sources are left to the runs: reading them imports Keras and may
    download.
    """
    from swin_gao_lib.data.sources import load_raw
    from swin_gao_lib.data.splits import split

    problems: list[InputError] = []
    by_source: dict[tuple[str, str], list[Plan]] = {}
    for p in plans:
        by_source.setdefault((p.config.dataset, p.config.source), []).append(p)
    for (dataset, source), users in by_source.items():
        where = ", ".join(dict.fromkeys(str(p.params) for p in users))
        try:
            check_source(dataset, source)
            if source == "keras":
                continue
            raw = load_raw(dataset, source)
        except InputError as exc:
            problems.append(type(exc)(f"{where}: {exc}"))
            continue
        sizes: dict[tuple, int | InputError] = {}
        for p in users:
            c = p.config
            key = (c.seed, c.validation_split, c.max_train_samples, c.max_test_samples,
                   c.image_handling)
            if key not in sizes:
                try:
                    sizes[key] = len(split(raw, c).y_train)
                except InputError as exc:
                    sizes[key] = exc
            found = sizes[key]
            try:
                if isinstance(found, InputError):
                    raise found
                check_train_split(c, found, log=lambda line: None)
            except InputError as exc:
                problems.append(_named(p.params, exc))
        del raw
    return problems


def _check_suite_space(plans: list[Plan], output: Path, force: bool) -> None:
    """Room for every run's records and executed notebook (a run's checkpoints are
    checked by the run itself, once its model is built: :mod:`swin_gao_lib.training.space`)."""
    todo = [p for p in plans if force or not RunFolder(p.run_dir).complete]
    if not todo:
        return
    needs = [run_bytes(p.config, p.images_per_epoch, notebook=True) for p in todo]
    kept = sum(used_bytes(p.run_dir) for p in todo if not force)
    largest = max(needs, key=lambda n: n.total)
    check_space(output, sum(n.total for n in needs) - kept,
                f"{len(todo)} run(s); the largest {largest.describe()}", field="--output")
