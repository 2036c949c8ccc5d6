"""Project commands; ``crawl`` replaces Scrapy's own (same options)."""
