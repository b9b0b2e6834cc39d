"""The console's pages, one module per area; routes.py lists them with the permission each needs."""
