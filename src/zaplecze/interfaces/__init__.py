"""The faces: the CLI (and, later, the API and the web workbench). Thin; map problems to exit
codes in one place."""
