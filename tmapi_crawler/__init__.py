"""tmapi-crawler: 1688.com category listings through TMAPI's paid JSON API."""

__version__ = "0.1.0"
