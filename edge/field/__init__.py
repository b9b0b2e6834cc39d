"""Field tools: what a technician runs on a laptop or on a unit (deploy, install-config, status, watch).

They read a unit's config (edge.unit.config) but never its daemon or vision.
"""
