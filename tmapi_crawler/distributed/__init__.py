"""``REDIS_URL``: many workers, one crawl.

With ``REDIS_URL`` set (setting or environment), the project's add-on
(:func:`tmapi_crawler.addon.use_redis`) swaps in the Redis scheduler
(:mod:`.scheduler`): every worker running the same spider (and
``TMAPI_CRAWL_ID``) shares one request queue and one seen-set in Redis
(:mod:`.queue`), so each page is fetched by one worker. The scheduler filters
duplicate requests as it queues them, so no dupefilter runs beside it.
"""
