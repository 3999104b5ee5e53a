"""The operations workbench: the REST API under /api and the server-rendered pages."""
