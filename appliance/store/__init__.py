"""The appliance's store: SQLite (WAL) with numbered migrations, and its tables' accessors."""

from appliance.store.db import Database, StoreError

__all__ = ["Database", "StoreError"]
