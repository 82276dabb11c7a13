"""Generated from proto/vidx/v1/vidx.proto by scripts/gen_stubs.py; do not edit."""
