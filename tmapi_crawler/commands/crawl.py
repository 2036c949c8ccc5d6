"""``scrapy crawl`` that refuses bad arguments early and exits with the outcome.

Scrapy's own command with two additions: the pre-flight checks
(:mod:`tmapi_crawler.preflight`: the spider's arguments, every enabled
component's settings) run first, so a bad argument or a missing token stops
the run with one clear message and exit code 2 before any request is made;
and the exit code says how the crawl ended (see
:mod:`tmapi_crawler.contract.outcome`), so a script can tell a complete run
from one that lost pages or output.
"""

from __future__ import annotations

import argparse

from scrapy.commands.crawl import Command as ScrapyCrawlCommand
from scrapy.exceptions import UsageError

from tmapi_crawler import preflight
from tmapi_crawler.contract.outcome import NOT_STARTED, exit_code


class Command(ScrapyCrawlCommand):
    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if len(args) != 1:
            super().run(args, opts)
            return
        assert self.crawler_process is not None and self.settings is not None
        spidercls = self.crawler_process.spider_loader.load(args[0])
        if problems := preflight.problems(self.settings, spidercls, opts.spargs):
            raise UsageError("\n".join(problems), print_help=False)
        crawler = self._create_crawler(spidercls)
        self.crawler_process.crawl(crawler, **opts.spargs)
        self.crawler_process.start()
        if self.crawler_process.bootstrap_failed or crawler.stats is None:
            self.exitcode = NOT_STARTED
        else:
            self.exitcode = exit_code(crawler.stats.get_stats())
