"""``manage.py d7sms_sandbox``: run the D7 sandbox server in the foreground until Ctrl-C."""

import argparse

from django.core.management.base import BaseCommand, DjangoHelpFormatter

from d7sms.sandbox import cli


class _HelpFormatter(DjangoHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Django's option order, with the outcomes table kept as written."""


class Command(BaseCommand):
    help = cli.DESCRIPTION

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.formatter_class = _HelpFormatter
        parser.epilog = cli.EPILOG
        return parser

    def add_arguments(self, parser):
        cli.add_arguments(parser)

    def handle(self, *args, **options):
        cli.serve(cli.sandbox_from_options(options), out=self.stdout)
