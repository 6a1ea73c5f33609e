"""The ``flambe`` command: ``flambe CONFIG [-i] [-s SECRETS] [-f] [-d] [-v]``."""

from __future__ import annotations

import logging
import sys
from typing import Optional

import click

from flambe import __version__


def _setup_logging(verbose: bool) -> None:
    level = logging.DEBUG if verbose else logging.INFO
    logging.basicConfig(level=level, format="%(message)s" if not verbose else
                        "%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def _run(config: str, install_extensions: bool, secrets: Optional[str], force: bool, debug: bool) -> None:
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
    if secrets:
        runnable.inject_secrets(secrets)
    runnable.parse()
    runnable.run(force=force, debug=debug)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("-i", "--install-extensions", is_flag=True,
              help="pip-install the extensions the config declares (git URLs are cloned into ~/.flambe/extensions).")
@click.option("-s", "--secrets", type=click.Path(dir_okay=False),
              help="INI file whose values the runnable reads as self.config['SECTION']['KEY'].")
@click.option("-f", "--force", is_flag=True, help="Let the runnable overwrite earlier results.")
@click.option("-d", "--debug", is_flag=True, help="Run in debug mode (the runnable decides what that means).")
@click.option("-v", "--verbose", is_flag=True, help="Show all logs, and the traceback of an error.")
@click.version_option(__version__, prog_name="flambe")
def main(config: str, install_extensions: bool, secrets: Optional[str], force: bool, debug: bool,
         verbose: bool) -> None:
    """Run the runnable described by CONFIG, a YAML file."""
    _setup_logging(verbose)
    from flambe.compile.errors import FlambeError
    try:
        _run(config, install_extensions, secrets, force, debug)
    except FlambeError as err:
        if verbose:
            raise
        click.echo(f"Error: {err}", err=True)
        click.echo("(run with -v for the full traceback)", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
