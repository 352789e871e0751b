"""The `forgestack` developer command; each subcommand lives in its own module."""

import click

from .dev import dev


@click.group()
@click.version_option(package_name="forgestack-cli")
def cli() -> None:
    """ForgeStack developer commands."""


cli.add_command(dev)


def main() -> None:
    cli()
