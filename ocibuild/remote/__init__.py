"""The registry client: push, pull, login over the Distribution HTTP API.

    pull_image(store, "docker.io/library/centos:6.7", RemoteOptions(), report) -> Descriptor
    push_image(store, ref, RemoteOptions(format="docker"), report, to="site:5000/") -> PushResult

`report(event)` receives progress (ocibuild.progress): a `BlobEvent` per blob moved (status
uploading / uploaded / skipped / mounted / downloading / downloaded / present),
`TransferEvent`s as images are pushed and pulled, `RetryEvent`, `RateLimitEvent`, `Message`.
"""

from ocibuild.remote.credentials import Credentials, find_credentials
from ocibuild.remote.login import login, logout
from ocibuild.remote.options import RemoteOptions
from ocibuild.remote.pull import pull_image
from ocibuild.remote.push import PushResult, push_image, push_images, target_reference

__all__ = [
    "Credentials",
    "PushResult",
    "RemoteOptions",
    "find_credentials",
    "login",
    "logout",
    "pull_image",
    "push_image",
    "push_images",
    "target_reference",
]
