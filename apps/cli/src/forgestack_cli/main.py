"""The `forgestack` developer command; each subcommand lives in its own module."""

import click

from .api_keys_commands import api_keys
from .db_commands import db
from .dev import dev
from .new_job import new_job


@click.group()
@click.version_option(package_name="forgestack-cli")
def cli() -> None:
    """ForgeStack developer commands."""


cli.add_command(dev)
cli.add_command(db)
cli.add_command(api_keys)
cli.add_command(new_job)


def main() -> None:
    cli()
