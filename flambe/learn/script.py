"""Script: run an existing command-line training script (``python -m module --k v``) as a stage."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
from collections import deque
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from flambe.compile.component import Component
from flambe.logging import TRIAL_DIR_ENV, get_trial_dir, read_scalars

logger = logging.getLogger(__name__)


class Script(Component):
    """Run ``python -m <script> --key value ...`` once, in a subprocess, and report what it logged.

    The script needs no change to run here: it keeps reading its arguments with argparse. What it
    logs with ``flambe.log`` (or ``flambe.logging.log_scalar``) goes to the trial's TensorBoard files and
    log, and the scalars come back as :attr:`report`, so a Script stage can be searched over with
    ``!g`` options and search algorithms and kept or dropped by ``reduce``.

    Parameters
    ----------
    script : str
        The module to run with ``python -m`` (usually shipped in an extension).
    args : dict or list, optional
        A mapping becomes ``--key value`` pairs (``True`` gives a bare ``--key``, ``False``/None omit
        the flag, a list repeats the values after one flag); a list is passed as is.
    output_dir_arg : str, optional
        The name of the script's own output-directory flag; it receives the trial directory.
    metric_name : str, optional
        The logged tag :meth:`metric` reports (its last value). Default: the last scalar logged.
    lower_is_better : bool
        True when a smaller metric is better. Default False.

    Notes
    -----
    Flambé 0.4.5 documented ``run()`` as returning a report dict. Here ``run()`` keeps the contract of
    every stage (it returns False: a script is one step) and the report is :attr:`report`, a dict of
    tag → last logged value.
    """

    def __init__(self, script: str, args: Optional[Union[Mapping[str, Any], Sequence[Any]]] = None,
                 output_dir_arg: Optional[str] = None, metric_name: Optional[str] = None,
                 lower_is_better: bool = False) -> None:
        self.script = script
        self.args = args if args is not None else {}
        self.output_dir_arg = output_dir_arg
        self.metric_name = metric_name
        self.lower_is_better = lower_is_better
        self.report: Dict[str, float] = {}
        self.last_tag: Optional[str] = None
        self.register_attrs("report", "last_tag")

    def command(self, output_dir: Optional[str] = None) -> List[str]:
        """The command line that :meth:`run` executes."""
        argv = [sys.executable, "-m", self.script]
        if isinstance(self.args, Mapping):
            for key, value in self.args.items():
                argv.extend(_flag(str(key), value))
        else:
            argv.extend(str(a) for a in self.args)
        if self.output_dir_arg and output_dir:
            argv.extend(_flag(self.output_dir_arg, output_dir))
        return argv

    def run(self) -> bool:
        """Run the script to completion; raise if it fails. Always returns False (one step)."""
        trial_dir = get_trial_dir() or tempfile.mkdtemp(prefix="flambe-script-")
        env = dict(os.environ, **{TRIAL_DIR_ENV: trial_dir})
        env["PYTHONPATH"] = os.pathsep.join(p for p in [os.getcwd(), env.get("PYTHONPATH", "")] if p)
        argv = self.command(trial_dir)
        logger.info("Running %s", " ".join(argv[1:]))
        tail: deque = deque(maxlen=20)
        with subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, errors="replace") as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                line = line.rstrip("\n")
                tail.append(line)
                logger.info("[%s] %s", self.script, line)
            code = proc.wait()
        if code != 0:
            shown = "\n".join(tail)
            raise RuntimeError(f"Script '{self.script}' exited with code {code}. Its last output:\n{shown}")
        for record in read_scalars(trial_dir):
            self.report[record["tag"]] = record["value"]
            self.last_tag = record["tag"]
        return False

    def metric(self) -> Optional[float]:
        """The last value of ``metric_name`` (or of the last scalar) the script logged."""
        tag = self.metric_name or self.last_tag
        return self.report.get(tag) if tag else None


def _flag(key: str, value: Any) -> List[str]:
    flag = key if key.startswith("-") else f"--{key}"
    if value is True:
        return [flag]
    if value is False or value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [flag, *(str(v) for v in value)]
    return [flag, str(value)]
