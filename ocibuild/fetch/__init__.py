"""Downloads for layer sources: content-addressed cache, lock file, retries, file/http(s)."""

from ocibuild.fetch.download import Fetched, Fetcher, default_cache_dir
from ocibuild.fetch.lockfile import LockFile, Pin

__all__ = ["Fetched", "Fetcher", "LockFile", "Pin", "default_cache_dir"]
