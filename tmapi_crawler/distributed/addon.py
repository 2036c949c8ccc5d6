"""``REDIS_URL``: many workers, one crawl.

With ``REDIS_URL`` set (setting or environment), :func:`use_redis` swaps in
the Redis scheduler (:mod:`.scheduler`): every worker running the same spider
(and ``TMAPI_CRAWL_ID``) shares one request queue and one seen-set in Redis
(:mod:`.queue`), so each page is fetched by one worker. The scheduler filters
duplicate requests as it queues them, so no dupefilter runs beside it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tmapi_crawler.distributed.connection import redis_url

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

SCHEDULER = "tmapi_crawler.distributed.scheduler.RedisScheduler"
# Scrapy's filter that filters nothing: the Redis scheduler does not build one
# (its seen-set is written in the script that queues), and no other is wanted.
NO_DUPEFILTER = "scrapy.dupefilters.BaseDupeFilter"


def use_redis(settings: BaseSettings) -> None:
    url = redis_url(settings)
    if not url:
        return
    settings.set("REDIS_URL", url, priority="addon")
    settings.set("SCHEDULER", SCHEDULER, priority="addon")
    settings.set("DUPEFILTER_CLASS", NO_DUPEFILTER, priority="addon")
