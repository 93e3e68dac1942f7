"""The local store: an OCI image layout, build transactions, its locks and state, gc, export."""

from ocibuild.store.image import StoredImage
from ocibuild.store.layout import REF_ANNOTATION, Store, default_store_path
from ocibuild.store.pending import PendingBlob
from ocibuild.store.transaction import Transaction

__all__ = [
    "REF_ANNOTATION",
    "PendingBlob",
    "Store",
    "StoredImage",
    "Transaction",
    "default_store_path",
]
