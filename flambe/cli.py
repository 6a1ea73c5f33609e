"""The ``flambe`` command: ``flambe CONFIG [-c CLUSTER] [-i] [-s SECRETS] [-f] [-d] [-v] [--dry-run]``."""

from __future__ import annotations

import logging
import sys
from typing import Optional

import click

from flambe import __version__


def _setup_logging(verbose: bool) -> None:
    """INFO (DEBUG with -v) on the console; everything also in ~/.flambe/logs/log.log (rotating)."""
    from flambe.logging import setup_global_logging
    setup_global_logging(logging.DEBUG if verbose else logging.INFO)


def _load_runnable(config: str, install_extensions: bool) -> object:
    from flambe.compile.errors import ConfigError
    from flambe.compile.schema import Schema
    from flambe.compile.yaml import load_file
    from flambe.runnable import Runnable
    loaded = load_file(config, install_extensions=install_extensions)
    runnable = loaded.obj
    if isinstance(runnable, Schema) or not isinstance(runnable, Runnable):
        kind = runnable.tag if isinstance(runnable, Schema) else type(runnable).__name__
        raise ConfigError(f"The top-level object of '{config}' is '{kind}', which is not a Runnable",
                          location=getattr(runnable, "location", None),
                          hint="the top of a config must be a runnable such as !Experiment; "
                               "components go inside its pipeline")
    runnable.inject_extensions(loaded.extensions)
    return runnable


def _run(config: str, install_extensions: bool, secrets: Optional[str], force: bool, debug: bool,
         verbose: bool = False, cluster: Optional[str] = None, dry_run: bool = False) -> None:
    from flambe.compile.errors import ConfigError
    if cluster:
        from flambe.cluster.ray_cluster import use_available_token
        use_available_token()  # before anything imports ray
    runnable = _load_runnable(config, install_extensions)
    if secrets:
        runnable.inject_secrets(secrets)
    if cluster:
        from flambe.cluster import Cluster
        target = _load_runnable(cluster, install_extensions)
        if not isinstance(target, Cluster):
            raise ConfigError(f"'{cluster}' describes a {type(target).__name__}, not a cluster",
                              hint="--cluster takes a file whose top-level object is a cluster, e.g. !RayCluster")
        if secrets:
            target.inject_secrets(secrets)
        target.parse()
        target.submit(runnable, force=force, debug=debug, verbose=verbose, dry_run=dry_run)
        return
    runnable.parse()
    if dry_run:
        describe = getattr(runnable, "dry_run", None)
        click.echo(describe() if callable(describe) else f"'{config}' is valid: a {type(runnable).__name__}; "
                   "nothing was run.")
        return
    runnable.run(force=force, debug=debug, verbose=verbose)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("-c", "--cluster", type=click.Path(dir_okay=False),
              help="Run on the cluster this YAML file describes (e.g. !RayCluster for an existing Ray cluster).")
@click.option("-i", "--install-extensions", is_flag=True,
              help="pip-install the extensions the config declares (git URLs are cloned into ~/.flambe/extensions).")
@click.option("-s", "--secrets", type=click.Path(dir_okay=False),
              help="INI file whose values the runnable reads as self.config['SECTION']['KEY'].")
@click.option("-f", "--force", is_flag=True, help="Let the runnable overwrite earlier results.")
@click.option("-d", "--debug", is_flag=True, help="Run in debug mode (the runnable decides what that means).")
@click.option("-v", "--verbose", is_flag=True, help="Show all logs, and the traceback of an error.")
@click.option("--dry-run", is_flag=True,
              help="Check the whole config and print the stage DAG with its variant counts; run nothing.")
@click.version_option(__version__, prog_name="flambe")
def main(config: str, cluster: Optional[str], install_extensions: bool, secrets: Optional[str], force: bool,
         debug: bool, verbose: bool, dry_run: bool) -> None:
    """Run the runnable described by CONFIG, a YAML file."""
    _setup_logging(verbose)
    from flambe.compile.errors import FlambeError
    try:
        _run(config, install_extensions, secrets, force, debug, verbose, cluster, dry_run)
    except FlambeError as err:
        if verbose:
            raise
        click.echo(f"Error: {err}", err=True)
        if getattr(err, "exit_code", 2) == 2:
            click.echo("(run with -v for the full traceback)", err=True)
        sys.exit(getattr(err, "exit_code", 2))
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
