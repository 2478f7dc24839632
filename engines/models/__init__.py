"""Model families: one module per family, each exposing an explicit `SPECS` tuple and its `DEFAULTS`.

`engines.registry.builtin_registry` lists these modules by hand; importing one registers nothing.
"""
