"""``scrapy crawl``, refusing bad arguments before anything starts.

Scrapy's own command with one addition: a spider that defines
``preflight(settings, arguments)`` has it checked first, so a bad argument or
a missing token stops the run with one clear message and exit code 2, before
any request is made.
"""

from __future__ import annotations

import argparse

from scrapy.commands.crawl import Command as ScrapyCrawlCommand
from scrapy.exceptions import UsageError


class Command(ScrapyCrawlCommand):
    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if len(args) == 1 and self.crawler_process is not None:
            spidercls = self.crawler_process.spider_loader.load(args[0])
            preflight = getattr(spidercls, "preflight", None)
            if preflight is not None:
                problems = preflight(self.settings, opts.spargs)
                if problems:
                    raise UsageError("\n".join(problems), print_help=False)
        super().run(args, opts)
