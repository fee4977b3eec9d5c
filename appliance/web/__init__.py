"""The HTTP layer: Litestar app, controllers, schemas, SSE; no ML library imports."""
