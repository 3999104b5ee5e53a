"""The REST API's routers, one per area; each route's permission is in ``policy.POLICY``."""
