"""The management API's methods, one module per kind of object, each listing its `METHODS`."""
