"""DocumentLibrary: what the admin views read, the catalog and the indexing progress."""

from __future__ import annotations

from collections.abc import Callable

from appliance.store.catalog import Catalog, Document


class DocumentLibrary:
    def __init__(self, catalog: Catalog, watch_dir: str,
                 indexing: Callable[[], bool] = lambda: False) -> None:  # fmt: skip
        self._catalog = catalog
        self.watch_dir = watch_dir
        self._indexing = indexing

    def documents(self) -> list[Document]:
        return self._catalog.documents()

    def indexing(self) -> bool:
        """True while the watcher has files to read."""
        return self._indexing()
